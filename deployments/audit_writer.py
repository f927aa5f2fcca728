"""The single audit writer, and the ingress's client of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.calls import call
from serve_app.audit.database_trail import DatabaseTrail
from serve_app.audit.events import AuditEvent
from serve_app.audit.group_commit import commit_each
from serve_app.errors import MedAIError, OutcomeUnknown, ServiceUnavailable
from serve_app.logs import configure_logging
from serve_app.schemas.audit import AuditRecord, ChainVerification, StoredResult
from serve_app.schemas.models import ModelVersionOut
from serve_app.schemas.routes import RouteOut, RouteStats
from serve_app.settings import Settings

log = logging.getLogger(__name__)

UNAVAILABLE = "the audit trail is unavailable"
UNKNOWN = "the audit trail did not answer: whether the record was stored is unknown"
"""A failure the writer itself did not report (a timeout, a dead replica): its outcome is
unknown. The writer's own 503s (the database is down, the transaction rolled back) pass
through unchanged: they do say nothing was stored."""
MESSAGES_IN_FLIGHT = 1
"""One write in flight from each ingress replica: events that arrive meanwhile queue and
travel together in the next message, so a burst costs one hop and one transaction."""


def event_count(batches: Sequence[Sequence[AuditEvent]]) -> int:
    return sum(len(b) for b in batches)


@serve.deployment(num_replicas=1, max_ongoing_requests=256)
class AuditWriter:
    """Owns the database connection and the hash chain's head; exactly one replica.

    Concurrent ``record`` calls are group-committed: one transaction per batch of
    calls (``audit.max_batch_events``). A call returns once its events are durable. A
    background task signs a checkpoint of a quiet tail within ``audit.checkpoint_every_s``.
    """

    async def __init__(self, settings: Settings) -> None:  # type: ignore[misc]  # Ray Serve awaits an async __init__
        configure_logging(settings.log_level)
        # NOTE: opened here, in the replica's event loop, with secrets read in the replica.
        self.trail = await DatabaseTrail.open(settings)
        audit = settings.audit
        self._batched = serve.batch(
            max_batch_size=audit.max_batch_events,
            batch_wait_timeout_s=audit.batch_wait_timeout_s,
            batch_size_fn=event_count,
        )(self._commit)
        self._signer = asyncio.create_task(self._sign_periodically(audit.checkpoint_every_s))

    async def record(self, events: list[AuditEvent]) -> None:
        """Return once ``events`` are committed, group-committed with concurrent calls."""
        error = await self._batched(events)
        if error is not None:
            raise error

    async def record_each(self, callers: list[list[AuditEvent]]) -> list[MedAIError | None]:
        """Commit each caller's events (one ingress message carries many callers), each a
        caller of its own in the group commit, so one caller's bad event fails only it.
        Returns, per caller, ``None`` once its events are committed, else its error."""
        outcomes = await asyncio.gather(
            *(self._batched(events) for events in callers), return_exceptions=True
        )
        return [_outcome(o) for o in outcomes]

    async def _commit(self, batches: list[list[AuditEvent]]) -> list[MedAIError | None]:
        # NOTE: whatever one caller's events raise, only that caller fails (group_commit).
        return await commit_each(self.trail.record, batches)

    async def _sign_periodically(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.trail.writer.checkpoint_if_due()
            except ServiceUnavailable:
                pass  # stand-by or halted: the writer logged why when it happened
            except Exception:
                log.exception("audit checkpoint failed; retrying next period")

    async def result(self, inference_id: str) -> StoredResult | None:
        return await self.trail.result(inference_id)

    def writer_state(self) -> str:
        """``active`` when writes can commit; else standby, halted or starting (readiness)."""
        return self.trail.writer.state.value

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        return await self.trail.entries(after_seq, limit)

    async def verify(self, full: bool = False) -> ChainVerification:
        return await self.trail.verify(full)

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        return await self.trail.model_versions(name)

    async def routes(self) -> list[RouteOut]:
        return await self.trail.routes()

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        return await self.trail.route_stats(endpoint, limit, since)

    async def __del__(self) -> None:
        self._signer.cancel()
        await self.trail.close()


def _outcome(outcome: MedAIError | BaseException | None) -> MedAIError | None:
    if outcome is None or isinstance(outcome, MedAIError):
        return outcome  # an outage (ServiceUnavailable) raised for the batch lands here too
    log.error("audit write failed: %s", type(outcome).__name__)
    return ServiceUnavailable("the audit writer failed; nothing of this record was stored")


class ServeTrail:
    """The ingress's ``AuditTrail``: the writer deployment through its handle.

    Concurrent requests' events travel in one message (``serve.batch`` with no wait), so
    the hop costs one message per burst rather than one per request. Every call waits at
    most ``audit.call_timeout_s``.
    """

    def __init__(
        self, writer: DeploymentHandle, max_batch_events: int, timeout_s: float = 60.0
    ) -> None:
        self.writer = writer
        self.timeout_s = timeout_s
        self._coalesced = serve.batch(
            max_batch_size=max_batch_events,
            batch_wait_timeout_s=0.0,
            max_concurrent_batches=MESSAGES_IN_FLIGHT,
            batch_size_fn=event_count,
        )(self._send)

    async def record(self, events: Sequence[AuditEvent]) -> None:
        if events and (error := await self._coalesced(list(events))) is not None:
            raise error

    async def _send(self, batches: list[list[AuditEvent]]) -> list[MedAIError | None]:
        try:
            return await self._write(batches)
        except OutcomeUnknown:
            # NOTE: the writer may have committed them: each caller is told which of its
            # records to look up, never that nothing was stored.
            return [unknown_outcome(batch) for batch in batches]

    async def result(self, inference_id: str) -> StoredResult | None:
        return await self._call("result", inference_id)

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        return await self._call("entries", after_seq, limit)

    async def verify(self, full: bool = False) -> ChainVerification:
        return await self._call("verify", full)

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        return await self._call("model_versions", name)

    async def routes(self) -> list[RouteOut]:
        return await self._call("routes")

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        return await self._call("route_stats", endpoint, limit, since)

    async def _call(self, method: str, *args: Any) -> Any:
        """A read: any failure the writer did not report itself is a plain 503."""
        try:
            return await asyncio.wait_for(
                call(self.writer, method, *args, unavailable=UNAVAILABLE), self.timeout_s
            )
        except TimeoutError:
            log.error("audit_writer.%s timed out after %g s", method, self.timeout_s)
            raise ServiceUnavailable(UNAVAILABLE) from None

    async def _write(self, callers: list[list[AuditEvent]]) -> list[MedAIError | None]:
        """A write, one outcome per caller: a failure the writer did not report itself
        leaves the outcome unknown."""
        try:
            return await asyncio.wait_for(
                call(
                    self.writer, "record_each", callers, unavailable=UNKNOWN, error=OutcomeUnknown
                ),
                self.timeout_s,
            )
        except TimeoutError:
            log.error("audit_writer.record timed out after %g s", self.timeout_s)
            raise OutcomeUnknown(UNKNOWN) from None


def unknown_outcome(events: Sequence[AuditEvent]) -> OutcomeUnknown:
    """The 503 of a write that may have been committed, naming what to look up."""
    ids = [event.object_id for event in events if event.result is not None]
    if not ids:
        return OutcomeUnknown(UNKNOWN)
    return OutcomeUnknown(
        f"{UNKNOWN}; look up inference {', '.join(map(str, ids))} (GET /results/{{id}}) "
        "before retrying",
        errors=[
            {"field": "inference_id", "rule": "outcome-unknown", "message": str(i)} for i in ids
        ],
    )
