"""Failed authentications, counted and audited in aggregate, off the request's path.

An unauthenticated client chooses how many requests it sends and what paths they name,
so each failure is only counted here, per (rule, client address), and a background task
writes one ``auth.failure`` entry per key and window with the count, the first few
paths (truncated) and the window. The 401 never waits for the audit writer; memory is
bounded: beyond ``max_keys`` keys a failure is merged into its rule's ``*`` client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from serve_app.audit.events import AuditAction, AuditEvent, utc_now
from serve_app.audit.trail import AuditTrail
from serve_app.http.metrics import Metrics

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
"""The actor of a failed authentication: an unverified token's claims are not trusted."""
MAX_PATH_CHARS = 256
"""Longest path kept; the rest of what a client sent is not worth storing."""
MAX_PATHS = 8
"""Distinct paths kept per key and window; further ones are only counted."""
ANY_CLIENT = "*"
"""The client of failures merged once ``max_keys`` keys are held."""


@dataclass
class _Tally:
    method: str
    since: datetime
    count: int = 0
    paths: list[str] = field(default_factory=list)


class FailedAuthentications:
    """``note`` each failure (cheap, never blocks); ``flush`` writes them to the trail,
    every ``window_s`` from a task started by the first failure."""

    def __init__(
        self,
        trail: AuditTrail,
        window_s: float,
        max_keys: int,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.trail = trail
        self.metrics = metrics or Metrics()
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self.merged = 0
        """Failures merged into a ``*`` client because ``max_keys`` keys were held."""
        self.lost = 0
        """Failures counted but not written: the trail was down when they were flushed."""
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._task: asyncio.Task[None] | None = None

    def note(self, rule: str, client: str, method: str, path: str) -> None:
        key = (rule, client)
        if key not in self._tallies and len(self._tallies) >= self.max_keys:
            key = (rule, ANY_CLIENT)
            self.merged += 1
            self.metrics.auth_failures.labels("merged").inc()
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(method, self.clock())
        tally.count += 1
        path = path[:MAX_PATH_CHARS]
        if len(tally.paths) < MAX_PATHS and path not in tally.paths:
            tally.paths.append(path)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_periodically())

    def events(self) -> list[AuditEvent]:
        """The held tallies as audit events, emptying them."""
        tallies, self._tallies = self._tallies, {}
        now = self.clock()
        return [
            AuditEvent(
                actor=ANONYMOUS,
                action=AuditAction.AUTH_FAILURE,
                object_type="request",
                details={
                    "rule": rule,
                    "client": client,
                    "method": tally.method,
                    "path": tally.paths[0],
                    "paths": tally.paths,
                    "count": tally.count,
                    "since": tally.since.isoformat(),
                    "until": now.isoformat(),
                },
            )
            for (rule, client), tally in tallies.items()
        ]

    async def flush(self) -> None:
        if not (events := self.events()):
            return
        count = sum(e.details["count"] for e in events)
        try:
            await self.trail.record(events)
        except Exception as error:
            self.lost += count
            self.metrics.auth_failures.labels("lost").inc(count)
            log.error(
                "could not audit failed authentications",
                extra={"error": type(error).__name__, "lost": self.lost},
            )
            return
        self.metrics.auth_failures.labels("audited").inc(count)

    async def _flush_periodically(self) -> None:
        while self._tallies:
            await asyncio.sleep(self.window_s)
            await self.flush()
