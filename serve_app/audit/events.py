"""What callers hand the audit writer: plain, picklable values (they cross Ray hops)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from serve_app.audit.chain import AuditEntry
from serve_app.logs import PSEUDONYM
from serve_app.records.model import ModelChange
from serve_app.records.route import RouteChange


def utc_now() -> datetime:
    return datetime.now(UTC)


class AuditAction(StrEnum):
    """What happened; ``AuditLog.action`` holds the value."""

    INFERENCE = "inference"
    MODEL_REGISTER = "model.register"
    MODEL_PROMOTE = "model.promote"
    MODEL_ROLLBACK = "model.rollback"
    MODEL_INTEGRITY_FAILURE = "model.integrity-failure"
    ROUTE_CHANGE = "route.change"
    AUTH_FAILURE = "auth.failure"
    AUDIT_READ = "audit.read"
    RESULT_READ = "result.read"
    AUDIT_VERIFY = "audit.verify"
    AUDIT_REANCHOR = "audit.reanchor"


@dataclass(frozen=True)
class InferenceRecord:
    """One image's answer, stored as an ``InferenceResult`` row with its audit entry."""

    inference_id: str
    model_name: str
    model_version: str
    outputs: Sequence[float]
    confidence: float
    prediction: str
    threshold: float
    latency_ms: float
    patient_ref: str | None = None
    """``Pseudonymizer`` output; a clear patient id is refused."""
    batch_id: str | None = None
    positive: bool | None = None
    """Whether the model's positive class won; ``None`` for a model without one."""
    endpoint: str | None = None
    """The A/B route that chose this model version, if one did."""
    arm: str | None = None
    """``name:version`` the route chose (or the shadow version that ran)."""
    shadow_of: str | None = None
    """For a shadow copy: the ``inference_id`` whose answer it ran beside."""

    def __post_init__(self) -> None:
        # NOTE: the message never echoes the value: it may be a clear patient id.
        if self.patient_ref is not None and not PSEUDONYM.fullmatch(self.patient_ref):
            raise ValueError("patient_ref must be a pseudonym (pt_ + 20 hex digits)")


ROUTING_FIELDS = ("endpoint", "arm", "shadow_of")
"""An inference's routing, in its audit entry's details when a route chose it."""


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    """Token ``sub`` of who acted (``anonymous`` for failed authentications)."""
    action: str
    object_type: str
    object_id: str | None = None
    role: str | None = None
    model_version: str | None = None
    """``name:version`` of the model involved."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """JSON-able, without PHI."""
    result: InferenceRecord | None = None
    model: ModelChange | None = None
    """A model version registered or moved, committed in the entry's transaction."""
    route: RouteChange | None = None
    """A route set or removed, committed in the entry's transaction."""

    def entry(self, seq: int, now: datetime, details: Mapping[str, Any]) -> AuditEntry:
        """This event as the chain's entry number ``seq``, stamped ``now``."""
        return AuditEntry(
            seq=seq,
            timestamp=now,
            actor=self.actor,
            role=self.role,
            action=str(self.action),
            object_type=self.object_type,
            object_id=self.object_id,
            model_version=self.model_version,
            details=details,
        )

    @classmethod
    def inference(
        cls, actor: str, role: str | None, result: InferenceRecord, **details: Any
    ) -> AuditEvent:
        """The audit event of one image's inference, carrying its result row."""
        return cls(
            actor=actor,
            role=role,
            action=AuditAction.INFERENCE,
            object_type="inference",
            object_id=result.inference_id,
            model_version=f"{result.model_name}:{result.model_version}",
            details={
                "batch_id": result.batch_id,
                "prediction": result.prediction,
                "confidence": result.confidence,
                **{k: v for k in ROUTING_FIELDS if (v := getattr(result, k)) is not None},
                **details,
            },
            result=result,
        )
