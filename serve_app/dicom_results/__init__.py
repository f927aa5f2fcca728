"""A stored result of a DICOM input as a DICOM object that refers to its source image: a
Segmentation (SEG) for masks, a Comprehensive SR measurement report (TID 1500) for a
classifier's finding or a detection's boxes. Each follows from the stored result alone."""

from __future__ import annotations

import io

from pydicom.dataset import Dataset

from serve_app.dicom_results.seg import segmentation
from serve_app.dicom_results.sr import measurement_report
from serve_app.errors import InvalidInput, NotFound
from serve_app.schemas.audit import StoredResult


def dicom_object(result: StoredResult) -> Dataset:
    """The SEG or SR of ``result``; ``NotFound`` (rule ``dicom-source``) unless it was made
    from a DICOM image with valid UIDs."""
    if result.source is None:
        raise NotFound(
            f"result {result.inference_id} was not made from a DICOM image with valid UIDs:"
            " there is no DICOM result to make",
            field="inference_id",
            rule="dicom-source",
        )
    kind = (result.findings or {}).get("kind")
    try:
        return segmentation(result) if kind == "segmentation" else measurement_report(result)
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        # NOTE: highdicom refuses a source whose stored geometry its IOD cannot take (a CT
        # placed in space without a pixel spacing); said by type, never echoing values.
        raise InvalidInput(
            f"result {result.inference_id}'s source image does not have what a DICOM"
            f" result of it needs ({type(error).__name__})",
            field="inference_id",
            rule="dicom-result",
        ) from None


def dicom_bytes(result: StoredResult) -> bytes:
    """``dicom_object(result)`` as a DICOM file (Part 10)."""
    buffer = io.BytesIO()
    dicom_object(result).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
