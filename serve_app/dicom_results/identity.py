"""What every DICOM result shares: the source image it refers to, the algorithm that made
it, and UIDs and times that follow from the stored result alone."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from serve_app.schemas.audit import StoredResult

MANUFACTURER = "MedAI Flow"
SCHEME = "99MEDAI"
"""The coding scheme of a model's own labels (private: ``99`` schemes are local)."""
NO_UNITS = Code("1", "UCUM", "no units")
DICOM_ROOT = "1.2.840.10008."
"""UIDs under it are the standard's (SOP classes, transfer syntaxes): never replaced."""
TIME_KEYWORDS = ("Content", "Series", "InstanceCreation")
"""The stamps a builder sets to its clock (the study's own date stays as stored: empty)."""
LONG_STRING = 64


def uid(result: StoredResult, purpose: str) -> str:
    """A UID that is the same for the same result and purpose, under ``2.25`` (a UUID-
    derived UID: 128 bits of the result's id and the purpose)."""
    digest = hashlib.sha256(f"{result.inference_id}|{purpose}".encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def label_code(label: str) -> Code:
    """A model's label as a code of ``SCHEME``: a value derived from the label (labels are
    free text, code values are not), meaning the label."""
    value = "L" + hashlib.sha256(label.encode()).hexdigest()[:15]
    return Code(value, SCHEME, long_string(label))


def long_string(text: str) -> str:
    """``text`` as a DICOM LO value: printable, no backslash (LO's value separator), at
    most 64 characters."""
    return "".join(c if c.isprintable() and c != "\\" else " " for c in text)[:LONG_STRING]


def algorithm_parameters(result: StoredResult) -> dict[str, str]:
    return {"model_sha256": result.model_sha256 or "unknown", "threshold": str(result.threshold)}


def source_image(result: StoredResult) -> Dataset:
    """The source image as a DICOM result needs it: the stored UIDs and geometry, with the
    patient and study identity left empty (they were never stored)."""
    source: Mapping[str, Any] = result.source or {}
    findings: Mapping[str, Any] = result.findings or {}
    ds = Dataset()
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        setattr(ds, keyword, source[keyword])
    for keyword in ("FrameOfReferenceUID", "ImageOrientationPatient", "ImagePositionPatient"):
        if source.get(keyword) is not None:
            setattr(ds, keyword, source[keyword])
    spacing = findings.get("pixel_spacing_mm")
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    if "height" in findings:
        ds.Rows, ds.Columns = findings["height"], findings["width"]
    for keyword in ("SliceThickness", "NumberOfFrames"):
        if source.get(keyword) is not None:
            setattr(ds, keyword, source[keyword])
    ds.Modality = source.get("Modality") or "OT"
    for keyword in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyID",
        "AccessionNumber",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
    ):
        setattr(ds, keyword, None)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME2", 16
    return ds


def _stamped(keyword: str) -> bool:
    return keyword.removesuffix("Date").removesuffix("Time") in TIME_KEYWORDS


def settle(ds: Dataset, result: StoredResult, kept: set[str]) -> None:
    """Make ``ds`` follow from ``result`` alone: every date and time the builder stamped
    becomes the result's, and every UID it drew at random one derived from the result.

    NOTE: highdicom stamps "now" and draws a few UIDs (dimension organisation, tracking)
    itself; replacing them here keeps the same result's object byte for byte the same.
    """
    created: datetime = result.created_at
    date, time = created.strftime("%Y%m%d"), created.strftime("%H%M%S.%f")
    drawn: dict[str, str] = {}

    def visit(dataset: Dataset) -> None:
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value:
                    visit(item)
            elif element.VR == "UI" and isinstance(element.value, str) and element.value:
                value = element.value
                if value not in kept and not value.startswith(DICOM_ROOT):
                    element.value = drawn.setdefault(value, uid(result, f"drawn-{len(drawn)}"))
            elif element.VR in ("DA", "TM") and _stamped(element.keyword):
                element.value = date if element.VR == "DA" else time
            elif element.VR == "DT":  # the source has none: each is a builder's stamp
                element.value = date + time

    visit(ds)
    if hasattr(ds, "file_meta"):
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def algorithm_name(result: StoredResult) -> str:
    return long_string(result.model_name)


def series_uids(result: StoredResult) -> dict[str, Any]:
    """The new object's own series and instance."""
    return {
        "series_instance_uid": uid(result, "series"),
        "series_number": 1,
        "sop_instance_uid": uid(result, "instance"),
        "instance_number": 1,
        "manufacturer": MANUFACTURER,
    }


def kept_uids(result: StoredResult, extra: list[str]) -> set[str]:
    source = result.source or {}
    return {str(v) for k, v in source.items() if k.endswith("UID") and v} | {
        uid(result, "series"),
        uid(result, "instance"),
        *extra,
    }
