"""DICOM: one frame to float pixels in 0..1; pydicom's and its plugins' errors become ours.

Details never quote free-text element values, so no patient data reaches a response.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
)
from pydicom.pixels.utils import get_expected_length, pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from serve_app.codecs.dicom_guards import check_frame, check_inflated_size
from serve_app.codecs.dicom_luts import check_luts
from serve_app.codecs.dicom_reference import dicom_reference
from serve_app.codecs.dicom_spacing import pixel_spacing
from serve_app.codecs.limits import check_dimensions
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.errors import InvalidInput, MedAIError, UnsupportedMediaType
from serve_app.settings import LimitsSettings

_GREY = ("MONOCHROME1", "MONOCHROME2")
_PALETTE = "PALETTE COLOR"
# NOTE: pydicom returns YBR_FULL(_422) as RGB (``as_rgb``) and the JPEG 2000
# codec undoes YBR_ICT/YBR_RCT itself, so all of these arrive as RGB.
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
# Values that scale or window pixels: each must be a finite number.
_SCALING = ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth")
# A bare dataset (no file meta) is native; pydicom found its encoding on reading.
_NATIVE = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


@contextmanager
def _translated(detail: str) -> Iterator[None]:
    """Turn any pydicom or plugin exception into ``InvalidInput``; ours pass through, and
    so does ``MemoryError``: a decoder worker answers it with its own limit's error."""
    try:
        yield
    except (MedAIError, MemoryError):
        raise
    except Exception as exc:  # NOTE: the plugins' exception types are undocumented
        raise InvalidInput(detail, field="file", rule="dicom") from exc


def _invalid(detail: str, rule: str = "dicom") -> InvalidInput:
    return InvalidInput(detail, field="file", rule=rule)


def _unsupported(detail: str, rule: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(detail, field="file", rule=rule)


def _int_attribute(ds: Dataset, keyword: str, default: int | None = None) -> int:
    with _translated(f"DICOM attribute {keyword} is malformed"):
        value = ds.get(keyword)
        number = None if value is None or value == "" else int(value)
    if number is not None:
        return number
    if default is None:
        raise _invalid(f"DICOM attribute {keyword} is missing")
    return default


def _read(data: bytes, limits: LimitsSettings) -> tuple[Dataset, UID]:
    with _translated("file is not a readable DICOM dataset"):
        check_inflated_size(data, limits.max_body_bytes)
        ds = dcmread(io.BytesIO(data), force=True)  # force: accept files without preamble
        syntax = ds.file_meta.get("TransferSyntaxUID")
        has_pixels = "PixelData" in ds
    if not syntax:
        # NOTE: with force=True pydicom "reads" any bytes; junk has neither file meta nor pixels.
        if not has_pixels or ds.original_encoding not in _NATIVE:
            raise _invalid("file is not a readable DICOM dataset")
        syntax = ds.file_meta.TransferSyntaxUID = _NATIVE[ds.original_encoding]
    if not has_pixels:
        # NOTE: pydicom drops an encapsulated Pixel Data element cut short by end of file.
        raise _invalid("DICOM file has no Pixel Data, or it is truncated", "dicom-pixel-data")
    return ds, syntax


def _check_pixel_format(ds: Dataset) -> tuple[str, int]:
    """Reject what this codec cannot represent; return the photometric interpretation and bits."""
    samples = _int_attribute(ds, "SamplesPerPixel", default=1)
    if samples not in (1, 3):
        raise _unsupported(f"DICOM samples per pixel {samples} is not 1 or 3", "dicom-samples")
    with _translated("DICOM attribute PhotometricInterpretation is malformed"):
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in (*_GREY, _PALETTE, *_COLOUR):
        detail = f"DICOM photometric interpretation {photometric[:32]!r} is not supported"
        raise _unsupported(detail, "photometric-interpretation")
    if samples != (3 if photometric in _COLOUR else 1):
        raise _invalid(f"DICOM {photometric} image cannot have {samples} samples per pixel")
    allocated = _int_attribute(ds, "BitsAllocated")
    stored = _int_attribute(ds, "BitsStored", default=allocated)
    supported = (1, 8, 16, 32) if photometric in _GREY else (8, 16)
    if allocated not in supported or not 0 < stored <= allocated:
        detail = f"DICOM {photometric} image with {stored} of {allocated} bits is not supported"
        raise _unsupported(detail, "dicom-bits")
    return photometric, stored


def _check_finite(ds: Dataset) -> None:
    """Refuse NaN or infinite rescale and window values, naming the attribute."""
    for keyword in _SCALING:
        with _translated(f"DICOM attribute {keyword} is malformed"):
            value = ds.get(keyword)
            values = np.asarray([] if value is None or value == "" else value, dtype=np.float64)
        if not np.isfinite(values).all():
            raise _invalid(f"DICOM attribute {keyword} is not a finite number", "finite")


def _frame(ds: Dataset, index: int, frames: int) -> bytes:
    """The encapsulated bytes of one frame, found as ``pixel_array`` finds them."""
    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    return get_frame(ds.PixelData, index, number_of_frames=frames, extended_offsets=extended)


def _check_decoder(syntax: UID) -> None:
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        detail = f"DICOM transfer syntax {syntax.name[:64]} has no installed decoder"
        raise _unsupported(detail, "transfer-syntax")


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
    modality = apply_modality_lut(stored, ds)
    if not np.isfinite(modality).all():
        raise _invalid("DICOM RescaleSlope and RescaleIntercept overflow the pixels", "finite")
    values, low, high = _voi(modality, ds)
    if high <= low:
        return np.zeros(stored.shape)
    unit = np.clip((values - low) / (high - low), 0.0, 1.0)
    return 1.0 - unit if photometric == "MONOCHROME1" else unit


def decode_dicom(data: bytes, limits: LimitsSettings, frame: int | None = None) -> DecodedImage:
    """Decode one frame of a DICOM file to float32 pixels in 0..1.

    Greyscale goes through the modality LUT (or rescale), then the first VOI
    LUT or window when the file has one, else the frame's own min..max;
    MONOCHROME1 is inverted so that high always means bright. Palette colour
    is expanded through its LUT; RGB and YBR come back as RGB scaled by
    *Bits Stored*.

    Parameters
    ----------
    data : bytes
        The file, with or without the 128-byte preamble and ``DICM``.
    limits : LimitsSettings
        *Rows* and *Columns* are checked against these before any pixel is decoded.
    frame : int, optional
        0-based frame of a multi-frame file; ``None`` takes the middle one
        (``frames // 2``). Only this frame is decoded.

    Returns
    -------
    DecodedImage
        Pixels of shape (rows, columns, 1 or 3), the frame used, the number of
        frames and the *Modality*.

    Raises
    ------
    InvalidInput
        Not readable DICOM, no or truncated pixel data, sides outside
        ``limits`` (rule ``range``), ``frame`` out of range (field ``frame``),
        a malformed or unbounded LUT (rules ``lut-*``, see ``dicom_luts``), or
        NaN/infinite rescale or window values or pixels (rule ``finite``).
    UnsupportedMediaType
        No installed decoder for the transfer syntax, or an unsupported
        photometric interpretation, samples per pixel or bit depth.
    """
    ds, syntax = _read(data, limits)
    columns, rows = _int_attribute(ds, "Columns"), _int_attribute(ds, "Rows")
    check_dimensions(columns, rows, limits, field="file")
    photometric, bits_stored = _check_pixel_format(ds)
    frames = max(_int_attribute(ds, "NumberOfFrames", default=1), 1)  # 0 means 1 to pydicom
    index = frames // 2 if frame is None else frame
    if not 0 <= index < frames:
        raise InvalidInput(f"frame {frame} is outside 0..{frames - 1}", field="frame", rule="range")
    _check_decoder(syntax)
    _check_finite(ds)
    with _translated("DICOM LUT attributes are malformed"):
        check_luts(ds, syntax.is_little_endian)

    with _translated("DICOM pixel data is corrupt or truncated"):
        truncated = not syntax.is_encapsulated and len(ds.PixelData) < get_expected_length(ds)
        if truncated:
            raise _invalid("DICOM pixel data is truncated")
        if syntax.is_encapsulated:
            check_frame(_frame(ds, index, frames), syntax, rows, columns, limits)
        stored = pixel_array(ds, index=index, as_rgb=True)

    # NOTE: overflow is refused below by value (rule ``finite``), not warned about.
    with (
        _translated("DICOM LUT, window or rescale attributes are invalid"),
        np.errstate(all="ignore"),
    ):
        if photometric == _PALETTE:
            rgb = apply_color_lut(stored, ds)[..., :3]  # drop an alpha LUT
            pixels = rgb / np.iinfo(rgb.dtype).max
        elif photometric in _COLOUR:
            pixels = np.clip(stored / (2**bits_stored - 1), 0.0, 1.0)
        else:
            pixels = _grey(stored, ds, photometric)[..., np.newaxis]
        modality = ds.get("Modality")
    spacing = pixel_spacing(ds)
    source = dicom_reference(ds, index, frames)
    pixels = pixels.astype(np.float32)
    if not np.isfinite(pixels).all():
        # NOTE: finite but huge rescale or window values overflow; never hand on NaN or inf.
        raise _invalid("DICOM pixels are not finite after rescale and window", "finite")
    return DecodedImage(
        pixels=pixels,
        format=ImageFormat.DICOM,
        frame=index,
        frames=frames,
        modality=str(modality) if modality else None,
        pixel_spacing_mm=spacing,
        dicom_source=source,
    )
