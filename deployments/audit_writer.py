"""The single audit writer, and its clients' end of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.remote import Remote
from serve_app.audit.database_trail import DatabaseTrail
from serve_app.audit.events import AuditEvent
from serve_app.audit.group_commit import commit_each
from serve_app.audit.trail import AuditTrail, DisabledTrail
from serve_app.errors import MedAIError, OutcomeUnknown, ServiceUnavailable
from serve_app.logs import configure_logging
from serve_app.settings import AuditSettings, Settings

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
class AuditWriter(DatabaseTrail):
    """The database trail made remote: it owns the connection and the hash chain's head,
    in exactly one replica; every read is the core class's own method.

    Concurrent ``record`` calls are group-committed: one transaction per batch of
    calls (``audit.max_batch_events``). A call returns once its events are durable. A
    background task signs a checkpoint of a quiet tail within ``audit.checkpoint_every_s``.
    """

    async def __init__(self, settings: Settings) -> None:  # type: ignore[misc]  # Ray Serve awaits an async __init__
        configure_logging(settings.log_level)
        # NOTE: opened here, in the replica's event loop, with secrets read in the replica.
        super().__init__(settings)
        await self.start()
        audit = settings.audit
        self._batched = serve.batch(
            max_batch_size=audit.max_batch_events,
            batch_wait_timeout_s=audit.batch_wait_timeout_s,
            batch_size_fn=event_count,
        )(self._commit)
        self._signer = asyncio.create_task(self._sign_periodically(audit.checkpoint_every_s))

    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Return once ``events`` are committed, group-committed with concurrent calls."""
        error = await self._batched(list(events))
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
        return await commit_each(super().record, batches)

    async def _sign_periodically(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.writer.checkpoint_if_due()
            except ServiceUnavailable:
                pass  # stand-by or halted: the writer logged why when it happened
            except Exception:
                log.exception("audit checkpoint failed; retrying next period")

    def writer_state(self) -> str:
        """``active`` when writes can commit; else standby, halted or starting (readiness)."""
        return self.writer.state.value

    async def __del__(self) -> None:
        self._signer.cancel()
        await self.close()


def _outcome(outcome: MedAIError | BaseException | None) -> MedAIError | None:
    if outcome is None or isinstance(outcome, MedAIError):
        return outcome  # an outage (ServiceUnavailable) raised for the batch lands here too
    log.error("audit write failed: %s", type(outcome).__name__)
    return ServiceUnavailable("the audit writer failed; nothing of this record was stored")


class ServeTrail(Remote):
    """The ``AuditTrail`` of the deployments that use the writer: its handle, with
    every call bounded by ``audit.call_timeout_s``.

    Concurrent requests' events travel in one message (``serve.batch`` with no wait), so
    the hop costs one message per burst rather than one per request.
    """

    def __init__(
        self, writer: DeploymentHandle, max_batch_events: int, timeout_s: float = 60.0
    ) -> None:
        super().__init__(writer, UNAVAILABLE, timeout_s)
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
            # NOTE: a failure the writer did not report itself leaves the outcome unknown.
            return await self._call(
                "record_each", batches, unavailable=UNKNOWN, error=OutcomeUnknown
            )
        except OutcomeUnknown:
            # NOTE: the writer may have committed them: each caller is told which of its
            # records to look up, never that nothing was stored.
            return [unknown_outcome(batch) for batch in batches]


def trail_of(writer: DeploymentHandle | None, audit: AuditSettings) -> AuditTrail:
    """The trail a deployment writes to: the writer through its handle, or none at all
    (``audit.enabled`` false)."""
    if writer is None:
        return DisabledTrail()
    # NOTE: the reads reach the writer through Remote.__getattr__, which mypy cannot see.
    return cast(AuditTrail, ServeTrail(writer, audit.max_batch_events, audit.call_timeout_s))


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
