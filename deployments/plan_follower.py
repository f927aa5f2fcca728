"""A pipeline kept serving by the registry's plan, wherever it runs (the preprocessing
replicas, and the ingress for tensors that need no preprocessing)."""

from __future__ import annotations

import asyncio
import logging
import time

from ray.serve.handle import DeploymentHandle

from serve_app.pipeline import Pipeline

log = logging.getLogger(__name__)

REGISTRY_TIMEOUT_S = 10.0
MISS_ASK_GAP_S = 0.05
"""Least time between two asks on a miss: requests naming what no version serves cannot
make one replica ask the registry more than 20 times a second."""


class PlanFollower:
    """Asks the registry for its plan and swaps ``pipeline`` to it when it changed: every
    ``poll_interval_s``, and when a request names what this plan does not serve. Asks are
    made one at a time."""

    def __init__(self, registry: DeploymentHandle, pipeline: Pipeline) -> None:
        self.registry = registry
        self.pipeline = pipeline
        self._task: asyncio.Task[None] | None = None
        self._asking = asyncio.Lock()
        self._asked_at = -MISS_ASK_GAP_S

    async def once(self) -> None:
        async with self._asking:
            await self._ask()

    async def refresh(self) -> bool:
        """Answer by a plan asked for after this call began: a request named what this
        plan does not serve, and the route or promotion it expects may be newer than the
        last poll (another replica may answer it already). Misses at once share one ask;
        misses in a row wait out ``MISS_ASK_GAP_S``. Whether the plan changed."""
        missed_at = time.monotonic()
        before = self.pipeline.plan
        async with self._asking:
            if self._asked_at < missed_at:  # no ask since the miss (one would be done)
                await asyncio.sleep(max(0.0, self._asked_at + MISS_ASK_GAP_S - time.monotonic()))
                await self._ask()
        return self.pipeline.plan is not before

    async def _ask(self) -> None:
        self._asked_at = time.monotonic()
        try:
            plan = await asyncio.wait_for(self.registry.serving.remote(), REGISTRY_TIMEOUT_S)
        except Exception:
            log.warning("the registry did not answer; serving what was serving")
            return
        if plan != self.pipeline.plan:
            serving = ", ".join(f"{s.ref} ({s.sha256[:12]})" for s in plan.models.values())
            log.info("now serving %s; routes: %s", serving, ", ".join(plan.routes) or "none")
            self.pipeline.follow(plan)

    def start(self, every_s: float) -> None:
        """Ask again every ``every_s`` from now on (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._every(every_s))

    async def _every(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.once()
