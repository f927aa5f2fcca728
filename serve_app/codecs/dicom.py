"""DICOM decoding: one frame of a DICOM file to display-ready float pixels.

pydicom and its decoding plugins (pylibjpeg, openjpeg, libjpeg) raise many
exception types; every one becomes our ``InvalidInput`` or
``UnsupportedMediaType`` here. Details never quote element values, so no
patient data can leak into a problem response.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    get_decoder,
    pixel_array,
)
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from serve_app.codecs.limits import check_dimensions
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.errors import InvalidInput, MedAIError, UnsupportedMediaType
from serve_app.settings import LimitsSettings

_GREY = ("MONOCHROME1", "MONOCHROME2")
_PALETTE = "PALETTE COLOR"
# NOTE: pydicom returns YBR_FULL(_422) as RGB (``as_rgb``), and the JPEG 2000
# codec undoes YBR_ICT/YBR_RCT itself, so all of these arrive as RGB.
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
_BITS_ALLOCATED = {"grey": (1, 8, 16, 32), "colour": (8, 16)}
# A bare dataset (no file meta) is natively encoded; pydicom found which way on reading.
_NATIVE = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


@contextmanager
def _translated(detail: str) -> Iterator[None]:
    """Turn any pydicom or plugin exception into ``InvalidInput``; ours pass through."""
    try:
        yield
    except MedAIError:
        raise
    except Exception as exc:  # NOTE: the plugins' exception types are not documented
        raise InvalidInput(detail, field="file", rule="dicom") from exc


def _int_attribute(ds: Dataset, keyword: str, default: int | None = None) -> int:
    with _translated(f"DICOM attribute {keyword} is malformed"):
        value = ds.get(keyword)
        number = None if value is None or value == "" else int(value)
    if number is not None:
        return number
    if default is None:
        raise InvalidInput(f"DICOM attribute {keyword} is missing", field="file", rule="dicom")
    return default


def _voi(values: np.ndarray, ds: Dataset) -> tuple[np.ndarray, float, float]:
    """Apply the first VOI LUT or window, if any; return the result and its output range."""
    luts = ds.get("VOILUTSequence")
    if luts and "LUTDescriptor" in luts[0] and "LUTData" in luts[0]:
        entries, first = luts[0].LUTDescriptor[0] or 2**16, luts[0].LUTDescriptor[1]
        # NOTE: LUT entries often use fewer bits than the descriptor says; scale by the real ones.
        lut = apply_voi(np.arange(first, first + entries), ds)
        return apply_voi(np.rint(values).astype(np.int64), ds), float(lut.min()), float(lut.max())
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        # Values beyond both window edges map to pydicom's output minimum and maximum.
        low, high = apply_windowing(np.array([-np.inf, np.inf]), ds)
        return apply_windowing(values, ds), float(low), float(high)
    return values, float(values.min()), float(values.max())


def _grey(stored: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    values, low, high = _voi(apply_modality_lut(stored, ds), ds)
    if high <= low:
        return np.zeros(stored.shape, dtype=np.float64)
    unit = np.clip((values - low) / (high - low), 0.0, 1.0)
    return 1.0 - unit if photometric == "MONOCHROME1" else unit


def decode_dicom(data: bytes, limits: LimitsSettings, frame: int | None = None) -> DecodedImage:
    """Decode one frame of a DICOM file to float pixels in 0..1.

    Greyscale frames go through the modality LUT (or rescale), then the first
    VOI LUT or window when the file has one, else the frame's own min..max;
    MONOCHROME1 is inverted so that bright always means high. Palette colour
    is expanded through its LUT; RGB and YBR frames are returned as RGB scaled
    by *Bits Stored*.

    Parameters
    ----------
    data : bytes
        The file, with or without the 128-byte preamble and ``DICM``.
    limits : LimitsSettings
        Rows and Columns are checked against these before any pixel is decoded.
    frame : int, optional
        0-based frame of a multi-frame file; ``None`` takes the middle one
        (``frames // 2``). Only this frame is decoded.

    Returns
    -------
    DecodedImage
        float32 pixels of shape (rows, columns, 1 or 3), with the frame used,
        the number of frames and the *Modality*.

    Raises
    ------
    InvalidInput
        The file is not readable DICOM, has no or truncated pixel data, breaks
        the size limits (rule ``range``), or ``frame`` is out of range.
    UnsupportedMediaType
        No installed decoder for the transfer syntax, or an unsupported
        photometric interpretation, samples per pixel or bit depth.
    """
    with _translated("file is not a readable DICOM dataset"):
        ds = dcmread(io.BytesIO(data), force=True)  # force: accept files without preamble
        syntax = ds.file_meta.get("TransferSyntaxUID")
        has_pixels = "PixelData" in ds
    if not syntax:
        # NOTE: with force=True pydicom "reads" any bytes; junk has neither file meta nor pixels.
        if not has_pixels or ds.original_encoding not in _NATIVE:
            raise InvalidInput("file is not a readable DICOM dataset", field="file", rule="dicom")
        syntax = ds.file_meta.TransferSyntaxUID = _NATIVE[ds.original_encoding]
    if not has_pixels:
        # NOTE: pydicom drops an encapsulated Pixel Data element cut short by end of file.
        raise InvalidInput(
            "DICOM file has no Pixel Data element, or it is truncated",
            field="file",
            rule="dicom-pixel-data",
        )

    rows, columns = _int_attribute(ds, "Rows"), _int_attribute(ds, "Columns")
    check_dimensions(columns, rows, limits, field="file")
    samples = _int_attribute(ds, "SamplesPerPixel", default=1)
    if samples not in (1, 3):
        raise UnsupportedMediaType(
            f"DICOM samples per pixel {samples} is not 1 or 3", field="file", rule="dicom-samples"
        )
    with _translated("DICOM attribute PhotometricInterpretation is malformed"):
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    kind = "grey" if photometric in _GREY else "colour"
    if photometric not in (*_GREY, _PALETTE, *_COLOUR):
        raise UnsupportedMediaType(
            f"DICOM photometric interpretation {photometric[:32]!r} is not supported",
            field="file",
            rule="photometric-interpretation",
        )
    if samples != (3 if photometric in _COLOUR else 1):
        raise InvalidInput(
            f"DICOM {photometric} image cannot have {samples} samples per pixel",
            field="file",
            rule="dicom",
        )
    bits_allocated = _int_attribute(ds, "BitsAllocated")
    bits_stored = _int_attribute(ds, "BitsStored", default=bits_allocated)
    if bits_allocated not in _BITS_ALLOCATED[kind] or not 0 < bits_stored <= bits_allocated:
        raise UnsupportedMediaType(
            f"DICOM {photometric} image with {bits_stored} of {bits_allocated} bits "
            "is not supported",
            field="file",
            rule="dicom-bits",
        )

    frames = max(_int_attribute(ds, "NumberOfFrames", default=1), 1)  # 0 means 1 to pydicom
    index = frames // 2 if frame is None else frame
    if not 0 <= index < frames:
        raise InvalidInput(f"frame {frame} is outside 0..{frames - 1}", field="frame", rule="range")

    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise UnsupportedMediaType(
            f"DICOM transfer syntax {syntax.name[:64]} has no installed decoder",
            field="file",
            rule="transfer-syntax",
        )

    with _translated("DICOM pixel data is truncated"):
        truncated = not syntax.is_encapsulated and len(ds.PixelData) < get_expected_length(ds)
    if truncated:
        raise InvalidInput("DICOM pixel data is truncated", field="file", rule="dicom")
    with _translated("DICOM pixel data is corrupt or truncated and cannot be decoded"):
        stored = pixel_array(ds, index=index, as_rgb=True)

    with _translated("DICOM LUT, window or rescale attributes are invalid"):
        if photometric == _PALETTE:
            rgb = apply_color_lut(stored, ds)[..., :3]  # drop an alpha LUT
            pixels = rgb / np.iinfo(rgb.dtype).max
        elif samples == 3:
            pixels = np.clip(stored / (2**bits_stored - 1), 0.0, 1.0)
        else:
            pixels = _grey(stored, ds, photometric)[..., np.newaxis]
        modality = ds.get("Modality")
    return DecodedImage(
        pixels=pixels.astype(np.float32),
        format=ImageFormat.DICOM,
        frame=index,
        frames=frames,
        modality=str(modality) if modality else None,
    )
