"""Shadow copies: a routed request also runs on the route's shadow versions, unseen.

A copy is sent once the answer is committed, as a background task of this ingress
replica that no answer waits on; its result is stored and audited (``shadow_of`` names
the answer it ran beside) and never returned. At most ``max_in_flight`` run at once:
beyond that a copy is dropped and counted, never queued ahead of answers. A copy lost
to a crash loses no answer anyone was given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from serve_app.audit.trail import AuditTrail
from serve_app.auth.tokens import Principal
from serve_app.backend import Backend
from serve_app.errors import MedAIError
from serve_app.http.answers import audit_event, to_response
from serve_app.http.metrics import Metrics
from serve_app.pipeline import Job
from serve_app.schemas.infer import InferResponse

log = logging.getLogger(__name__)


class ShadowCopies:
    def __init__(
        self, backend: Backend, trail: AuditTrail, metrics: Metrics, max_in_flight: int
    ) -> None:
        self.backend = backend
        self.trail = trail
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self,
        job: Job,
        answer: InferResponse,
        shadows: tuple[str, ...],
        caller: Principal,
        patient_ref: str | None,
        batch_id: str | None = None,
    ) -> None:
        """Run ``job`` on each shadow version in the background, beside ``answer``."""
        for ref in shadows:
            if len(self._tasks) >= self.max_in_flight:
                self.metrics.shadows.labels("dropped").inc()
                continue
            copy = dataclasses.replace(job, model=ref, shadow=True)
            task = asyncio.create_task(self._run(copy, answer, caller, patient_ref, batch_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        job: Job,
        answer: InferResponse,
        caller: Principal,
        patient_ref: str | None,
        batch_id: str | None,
    ) -> None:
        started = time.perf_counter()
        try:
            (outcome,) = await self.backend.infer([job])
            if isinstance(outcome, MedAIError):
                raise outcome
            response = to_response(outcome, started).model_copy(
                update={"endpoint": answer.endpoint, "arm": job.model}
            )
            shadow_of = answer.inference_id
            event = audit_event(response, outcome, caller, patient_ref, batch_id, shadow_of)
            await self.trail.record([event])
        except Exception as error:  # NOTE: a shadow's failure never reaches a client
            self.metrics.shadows.labels("failed").inc()
            # NOTE: the type and rule only: a message might quote the request.
            rule = error.rule if isinstance(error, MedAIError) else None
            log.warning(
                "shadow copy failed",
                extra={"model": job.model, "error": type(error).__name__, "rule": rule},
            )
            return
        self.metrics.shadows.labels("stored").inc()
