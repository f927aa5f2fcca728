"""A segmentation's masks as a DICOM Segmentation (SEG) of its source image."""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from serve_app.dicom_results.identity import (
    algorithm_name,
    algorithm_parameters,
    kept_uids,
    label_code,
    long_string,
    series_uids,
    settle,
    source_image,
)
from serve_app.errors import InvalidInput
from serve_app.runtime.kinds import rle
from serve_app.schemas.audit import StoredResult


def segmentation(result: StoredResult) -> Dataset:
    """One binary segment per class of the answer, each named by its label and by the
    algorithm (model name, version, file SHA-256), on the source image's pixel grid."""
    findings = result.findings or {}
    if (result.source or {}).get("NumberOfFrames") is not None:
        raise InvalidInput(
            "a SEG of one frame of a multi-frame image is not made yet; the result itself"
            " (GET /results/{inference_id}) holds the masks",
            field="inference_id",
            rule="multi-frame",
        )
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name(result),
        family=codes.cid7162.ArtificialIntelligence,
        version=result.model_version,
        parameters=algorithm_parameters(result),
    )
    labels = [c["label"] for c in findings["classes"]]
    segments = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=long_string(label),
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=label_code(label),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, label in enumerate(labels, start=1)
    ]
    source = result.source or {}
    spacing = findings.get("pixel_spacing_mm")
    # NOTE: given, so that a source placed in space but of unknown slice thickness still
    # makes a SEG (highdicom would read the thickness from the source image).
    measures = (
        hd.PixelMeasuresSequence(list(spacing), source.get("SliceThickness"))
        if spacing is not None and source.get("FrameOfReferenceUID")
        else None
    )
    masks = np.stack([rle.decode(c["mask"]) for c in findings["classes"]], axis=-1)
    seg = hd.seg.Segmentation(
        source_images=[source_image(result)],
        pixel_array=masks[np.newaxis],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        manufacturer_model_name=algorithm_name(result),
        software_versions=long_string(result.model_version),
        device_serial_number=(result.model_sha256 or "unknown")[:64],
        content_description=long_string(f"{result.model_name} {result.model_version}"),
        omit_empty_frames=False,
        pixel_measures=measures,
        **series_uids(result),
    )
    settle(seg, result, kept_uids(result, []))
    return seg
