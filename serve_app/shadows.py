"""Shadow copies: a routed request also runs on the route's shadow versions, unseen.

The pipeline starts the copies where the answer was interpreted, from the image already
decoded, as background tasks of that replica that no answer waits on. A copy's record is
stored and audited (``shadow_of`` names the answer it ran beside) and never returned. At
most ``max_in_flight`` run at once on a replica: beyond that a copy is dropped and
counted, never queued ahead of answers. A copy lost to a crash loses no answer anyone
was given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from serve_app.audit.events import AuditEvent
from serve_app.audit.trail import AuditTrail
from serve_app.errors import MedAIError
from serve_app.job import Job, Outcome

log = logging.getLogger(__name__)

COUNTER = "medai_shadow_copies"
COUNTER_HELP = "Shadow copies of routed requests, by outcome (stored, failed, dropped)."
"""The copies' counter, the same wherever the copies run (Prometheus, or Ray's metrics)."""
Run = Callable[[list[Job]], Awaitable[list[Outcome]]]
"""Runs jobs through the pipeline (``Pipeline.infer``)."""
Count = Callable[[str], None]
"""Counts one copy by outcome: ``stored``, ``failed`` or ``dropped``."""


class ShadowCopies:
    def __init__(self, trail: AuditTrail, count: Count, max_in_flight: int) -> None:
        self.trail = trail
        self.count = count
        self.max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, copies: list[Job], run: Run) -> None:
        """Run each copy with ``run`` in the background and store its record."""
        for copy in copies:
            if len(self._tasks) >= self.max_in_flight:
                self.count("dropped")
                continue
            task = asyncio.create_task(self._run(copy, run))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the copies in flight: a stopping app stores them before its trail closes."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _run(self, copy: Job, run: Run) -> None:
        try:
            (outcome,) = await run([copy])
            if isinstance(outcome, MedAIError):
                raise outcome
            await self.trail.record([AuditEvent.inference(outcome)])
        except Exception as error:  # NOTE: a shadow's failure never reaches a client
            self.count("failed")
            # NOTE: the type and rule only: a message might quote the request.
            rule = error.rule if isinstance(error, MedAIError) else None
            log.warning(
                "shadow copy failed",
                extra={"model": copy.model, "error": type(error).__name__, "rule": rule},
            )
            return
        self.count("stored")
