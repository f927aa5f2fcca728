"""Each model kind's postprocessing, one module per kind: its output's shape checked at
registration, then one image's output read into an answer (``Interpretation``) mapped
back to the source image's geometry."""

from __future__ import annotations

import numpy as np

from serve_app.catalog.spec import ModelKind, ModelSpec
from serve_app.records.inference import Interpretation
from serve_app.runtime.kinds import detection, segmentation
from serve_app.runtime.kinds.geometry import SourceGeometry
from serve_app.runtime.postprocess import interpret as classify


def interpret(row: np.ndarray, spec: ModelSpec, geometry: SourceGeometry) -> Interpretation:
    """One image's output row read by its model's kind."""
    kind = spec.metadata.kind
    if kind is ModelKind.SEGMENTATION:
        return segmentation.interpret(row, spec, geometry)
    if kind is ModelKind.DETECTION:
        return detection.interpret(row, spec, geometry)
    return classify(row, spec.metadata)


def output_problem(row: np.ndarray, spec: ModelSpec) -> str | None:
    """Why one image's output (no batch axis) does not fit a segmentation or detection
    model; classifiers are checked by ``runtime.examine``."""
    if spec.metadata.kind is ModelKind.SEGMENTATION:
        return segmentation.output_problem(row.shape, row.dtype.kind in "biu", spec)
    if spec.metadata.kind is ModelKind.DETECTION:
        return detection.output_problem(row.shape, spec)
    return None
