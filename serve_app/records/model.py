"""A model version registered or moved, stored as a ``ModelVersion`` row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelVersionRecord:
    """A registered model version, stored as a ``ModelVersion`` row with its audit entry."""

    model_name: str
    version: str
    file_path: str
    file_hash: str
    file_size_bytes: int
    input_shape: Sequence[int | None]
    output_shape: Sequence[int | None]
    inference_latency_ms: float | None = None
    clinical_domain: str | None = None
    confidence_threshold: float | None = None
    fda_submission_id: str | None = None
    iso_certification: str | None = None
    status: str = "development"


@dataclass(frozen=True)
class StatusChange:
    """A model version's new lifecycle status, applied with its audit entry."""

    model_name: str
    version: str
    status: str


ModelChange = ModelVersionRecord | StatusChange
