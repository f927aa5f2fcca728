"""What a DICOM result must say of the image it was made from: its UIDs and geometry,
never who the patient is."""

from __future__ import annotations

import math
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
MAX_COORDINATE_MM = 1e6
"""Largest patient coordinate or thickness kept: beyond it a value is a writer's mistake."""


def _uid(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if not isinstance(value, str) or not value:
        return None
    uid = UID(value)
    return str(uid) if uid.is_valid else None


def _numbers(ds: Dataset, keyword: str, count: int) -> list[float] | None:
    try:
        value = ds.get(keyword)
        items = [] if value is None else value if isinstance(value, MultiValue) else [value]
        numbers = [float(v) for v in items]
    except (TypeError, ValueError, OverflowError):
        return None
    if len(numbers) != count:
        return None
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE_MM for v in numbers):
        return None
    return numbers


def dicom_reference(ds: Dataset, frame: int, frames: int) -> dict[str, Any] | None:
    """The source image's reference for a SEG or SR made from one of its frames: its
    Study, Series and SOP Instance UIDs and SOP class (``None`` unless all four are valid
    UIDs), the frame used (1-based, for a multi-frame file), and what places it in the
    patient's space when the file says so validly (frame of reference, orientation,
    position, slice thickness; each dropped when odd). No patient or study identity."""
    uids = {keyword: _uid(ds, keyword) for keyword in REQUIRED_UIDS}
    if any(uid is None for uid in uids.values()):
        return None
    thickness = _numbers(ds, "SliceThickness", 1) if "SliceThickness" in ds else None
    modality = ds.get("Modality")
    return {
        **uids,
        "NumberOfFrames": frames if frames > 1 else None,
        "Modality": str(modality)[:16] if modality else None,
        "frame_number": frame + 1 if frames > 1 else None,
        "FrameOfReferenceUID": _uid(ds, "FrameOfReferenceUID"),
        "ImageOrientationPatient": _numbers(ds, "ImageOrientationPatient", 6),
        "ImagePositionPatient": _numbers(ds, "ImagePositionPatient", 3),
        "SliceThickness": None if thickness is None or thickness[0] <= 0 else thickness[0],
    }
