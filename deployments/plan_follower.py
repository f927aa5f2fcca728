"""A pipeline kept serving by the registry's plan, wherever it runs (the preprocessing
replicas, and the ingress for tensors that need no preprocessing)."""

from __future__ import annotations

import asyncio
import logging

from ray.serve.handle import DeploymentHandle

from serve_app.pipeline import Pipeline

log = logging.getLogger(__name__)

REGISTRY_TIMEOUT_S = 10.0


class PlanFollower:
    """Asks the registry for its plan and swaps ``pipeline`` to it when it changed."""

    def __init__(self, registry: DeploymentHandle, pipeline: Pipeline) -> None:
        self.registry = registry
        self.pipeline = pipeline
        self._task: asyncio.Task[None] | None = None

    async def once(self) -> None:
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
