"""An inference as the client sees it, and as the audit trail stores it."""

from __future__ import annotations

import time
import uuid

from serve_app.audit.events import AuditEvent, InferenceRecord
from serve_app.auth.tokens import Principal
from serve_app.pipeline import Prediction
from serve_app.schemas.infer import InferResponse


def to_response(prediction: Prediction, started: float) -> InferResponse:
    i = prediction.interpretation
    return InferResponse(
        inference_id=str(uuid.uuid4()),
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        outputs=i.outputs,
        labels=prediction.labels,
        confidence_score=i.confidence_score,
        prediction=i.prediction,
        threshold=i.threshold,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        frame=prediction.frame,
        frames=prediction.frames,
        endpoint=prediction.endpoint,
        arm=prediction.arm,
    )


def audit_event(
    response: InferResponse,
    prediction: Prediction,
    caller: Principal,
    patient_ref: str | None,
    batch_id: str | None,
    shadow_of: str | None = None,
) -> AuditEvent:
    """The audit entry, carrying the result row, that must be committed before answering."""
    record = InferenceRecord(
        inference_id=response.inference_id,
        model_name=response.model_name,
        model_version=response.model_version,
        outputs=response.outputs,
        confidence=response.confidence_score,
        prediction=response.prediction,
        threshold=response.threshold,
        latency_ms=response.latency_ms,
        patient_ref=patient_ref,
        batch_id=batch_id,
        positive=prediction.interpretation.positive,
        endpoint=response.endpoint,
        arm=response.arm,
        shadow_of=shadow_of,
    )
    return AuditEvent.inference(caller.subject, caller.role, record)
