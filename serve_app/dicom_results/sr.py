"""A classifier's finding or a detection's boxes as a Comprehensive SR measurement report
(TID 1500) of its source image."""

from __future__ import annotations

from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from serve_app.dicom_results.identity import (
    MANUFACTURER,
    NO_UNITS,
    SCHEME,
    algorithm_name,
    algorithm_parameters,
    kept_uids,
    label_code,
    series_uids,
    settle,
    source_image,
    uid,
)
from serve_app.schemas.audit import StoredResult

SCORE = Code("score", SCHEME, "Score")
"""A box's score, or a classifier's confidence."""
THRESHOLD = Code("threshold", SCHEME, "Decision threshold")
IMAGING_PROCEDURE = Code("363679005", "SCT", "Imaging procedure")


def _algorithm(result: StoredResult) -> hd.sr.AlgorithmIdentification:
    parameters = [f"{k}={v}" for k, v in algorithm_parameters(result).items()]
    return hd.sr.AlgorithmIdentification(
        name=algorithm_name(result), version=result.model_version[:64], parameters=parameters
    )


def _measurement(
    name: Code, value: float, algorithm: hd.sr.AlgorithmIdentification
) -> hd.sr.Measurement:
    return hd.sr.Measurement(name=name, value=value, unit=NO_UNITS, algorithm_id=algorithm)


def _frames(result: StoredResult) -> dict[str, Any]:
    frame = (result.source or {}).get("frame_number")
    return {} if frame is None else {"referenced_frame_numbers": [frame]}


def _box(
    result: StoredResult, number: int, box: dict[str, Any], source: Dataset, algorithm: Any
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """One kept box: a closed polyline in source pixels, its label and score."""
    x0, y0, x1, y1 = box["box"]
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float64)
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=corners,
        source_image=hd.sr.SourceImageForRegion.from_source_image(source, **_frames(result)),
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=uid(result, f"box-{number}"), identifier=f"box {number}"
        ),
        referenced_region=region,
        finding_type=label_code(box["label"]),
        algorithm_id=algorithm,
        measurements=[_measurement(SCORE, box["score"], algorithm)],
    )


def _finding(
    result: StoredResult, source: Dataset, algorithm: Any
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """A classifier's answer: its prediction as a finding, its confidence and threshold."""
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=uid(result, "finding"), identifier="classification"
        ),
        algorithm_id=algorithm,
        finding_type=label_code(result.prediction),
        measurements=[
            _measurement(SCORE, result.confidence, algorithm),
            _measurement(THRESHOLD, result.threshold, algorithm),
        ],
        source_images=[
            hd.sr.SourceImageForMeasurementGroup.from_source_image(source, **_frames(result))
        ],
    )


def measurement_report(result: StoredResult) -> Dataset:
    """Each kept box (a detection) or the prediction (a classifier) as a measurement group
    naming the algorithm, observed by the platform as a device."""
    source = source_image(result)
    algorithm = _algorithm(result)
    findings = result.findings or {}
    groups: list[Any] = (
        [_box(result, n, box, source, algorithm) for n, box in enumerate(findings["boxes"], 1)]
        if findings.get("kind") == "detection"
        else [_finding(result, source, algorithm)]
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=uid(result, "device"),
            name=MANUFACTURER,
            model_name=algorithm_name(result),
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=IMAGING_PROCEDURE,
        imaging_measurements=groups,
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=report,
        series_description=f"{result.model_name} {result.model_version}"[:64],
        **series_uids(result),
    )
    kept = kept_uids(result, [uid(result, "device"), uid(result, "finding")])
    kept |= {uid(result, f"box-{n}") for n in range(1, len(findings.get("boxes", [])) + 1)}
    settle(sr, result, kept)
    return sr
