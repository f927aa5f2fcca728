"""What callers hand the audit writer: plain, picklable values (they cross Ray hops)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from serve_app.audit.chain import AuditEntry
from serve_app.records.inference import InferenceRecord
from serve_app.records.model import ModelChange
from serve_app.records.route import RouteChange


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return uuid4().hex


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
    event_id: str = field(default_factory=new_event_id, compare=False)
    """This event's delivery key, made where the event is. Ray's router re-sends a call
    that a replica it saw die had not yet acknowledged, though the replica may have run
    it: a message to the writer can arrive twice, and the key lets the writer commit
    each event once (``DatabaseTrail.record``). Stored beside the entry, not hashed: it
    names a delivery, it says nothing of what happened."""

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
    def inference(cls, result: InferenceRecord, **details: Any) -> AuditEvent:
        """The audit event of one image's inference, carrying its result row."""
        return cls(
            actor=result.requested_by,
            role=result.role,
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
