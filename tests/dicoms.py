"""Small real DICOM files built with pydicom: palette colour with plain or segmented LUTs,
and greyscale with chosen rescale and window values (what an attacker would upload)."""

from __future__ import annotations

import io
import struct

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

LINEAR_BOMB_SEGMENT = (1, 65535, 65535)
"""A linear segment: 3 words (6 bytes) that pydicom expands to 65,535 entries."""


def _image(photometric: str, side: int, pixels: np.ndarray) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = 8 * pixels.dtype.itemsize
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def palette_dicom(
    side: int = 64, segments: list[int] | None = None, entries: int = 256, depth: int = 16
) -> bytes:
    """A ``side`` x ``side`` PALETTE COLOR image with 8-bit indices.

    With ``segments`` (16-bit words) every channel's LUT is that segmented data;
    otherwise each channel is a plain ramp of ``entries`` ``depth``-bit values.
    """
    indices = (np.arange(side * side) % 256).astype(np.uint8).reshape(side, side)
    ds = _image("PALETTE COLOR", side, indices)
    for channel in ("Red", "Green", "Blue"):
        ds.add_new(f"{channel}PaletteColorLookupTableDescriptor", "US", [entries % 65536, 0, depth])
        if segments is None:
            ramp = np.linspace(0, 2**depth - 1, entries).astype(f"<u{depth // 8}")
            ds.add_new(f"{channel}PaletteColorLookupTableData", "OW", ramp.tobytes())
        else:
            data = struct.pack(f"<{len(segments)}H", *segments)
            ds.add_new(f"Segmented{channel}PaletteColorLookupTableData", "OW", data)
    return to_bytes(ds)


def segmented_lut_bomb(segments: int = 1000) -> bytes:
    """A palette DICOM of a few KB whose segmented LUTs pydicom expands to
    ``segments`` x 65,535 entries per channel (~1.25 MiB per 18 bytes of file)."""
    return palette_dicom(segments=[0, 1, 0, *LINEAR_BOMB_SEGMENT * segments])


def grey_dicom(side: int = 64, **scaling: str) -> bytes:
    """A 12-bit MONOCHROME2 ramp with the given rescale/window attributes (DS strings);
    rescale is slope 1, intercept 0 unless given (pydicom applies it only with both)."""
    scaling = {"RescaleSlope": "1", "RescaleIntercept": "0", **scaling}
    ramp = (np.arange(side * side) % 4096).astype(np.uint16).reshape(side, side)
    ds = _image("MONOCHROME2", side, ramp)
    ds.BitsStored, ds.HighBit = 12, 11
    for keyword, value in scaling.items():
        ds.add_new(keyword, "DS", value)
    return to_bytes(ds)


def deflated_rgb_dicom(side: int = 2048) -> bytes:
    """A ``side`` x ``side`` RGB image of one colour in a Deflated transfer syntax: a few
    KB of file that inflates to 12 MiB of pixels and takes ~0.2 GiB to decode."""
    ds = _image("MONOCHROME2", side, np.full((side, side, 3), 200, np.uint8))
    ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return to_bytes(ds)


def grey_image_dicom(pixels: np.ndarray, **attributes: object) -> bytes:
    """An 8-bit MONOCHROME2 DICOM of ``pixels`` (rows, columns), with ``attributes``
    (``PixelSpacing=["0.5", "0.8"]``, ...) set by keyword."""
    ds = _image("MONOCHROME2", 0, pixels.astype(np.uint8))
    ds.Rows, ds.Columns = pixels.shape
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return to_bytes(ds)
