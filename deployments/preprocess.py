from __future__ import annotations

import asyncio

from ray import serve
from ray.serve import metrics
from ray.serve.handle import DeploymentHandle

from deployments.audit_writer import trail_of
from deployments.hops import RunnerCalls
from deployments.plan_follower import PlanFollower
from serve_app.catalog.spec import ModelSpec
from serve_app.logs import configure_logging
from serve_app.pipeline import Pipeline
from serve_app.runtime.lifecycle import ModelState, RunnerStatus
from serve_app.settings import Settings
from serve_app.shadows import COUNTER, COUNTER_HELP, ShadowCopies

READINESS_TIMEOUT_S = 5.0


@serve.deployment(max_ongoing_requests=64)
class Preprocessor(Pipeline):
    """The pipeline made remote: decode PNG/JPEG/DICOM, shape pixels to the target model's
    input, call it, and interpret its answer.

    Calling the model from here, rather than returning the tensor to the
    ingress, keeps pixels to one hop after decoding. Each call carries a list
    of jobs, and each model gets its share as one stacked tensor. Which version of
    each model serves is the registry's: each replica follows it (``registry.poll_interval_s``).
    ``infer`` is the pipeline's: client errors come back as values, not raised (Ray would
    log a traceback for each and wrap it in RayTaskError).
    """

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async __init__
        self,
        settings: Settings,
        specs: dict[str, ModelSpec],
        runners: dict[str, DeploymentHandle],
        registry: DeploymentHandle,
        audit_writer: DeploymentHandle | None,
    ) -> None:
        configure_logging(settings.log_level)
        self.runners = runners
        self.registry = registry
        copies = metrics.Counter(COUNTER, COUNTER_HELP, tag_keys=("outcome",))
        shadows = ShadowCopies(
            trail_of(audit_writer, settings.audit),
            lambda outcome: copies.inc(tags={"outcome": outcome}),
            settings.registry.max_shadows_in_flight,
        )
        super().__init__(settings, specs, RunnerCalls(runners), shadows)
        # NOTE: decoder workers take a second or two to import their libraries: not on
        # the first upload's time.
        await asyncio.to_thread(self.decode.pool.warm)
        # NOTE: before the first request, so that a restart never answers with the newest
        # registered version when another is in production.
        self.follower = PlanFollower(registry, self)
        await self.follower.once()
        self.follower.start(settings.registry.poll_interval_s)

    async def refresh_plan(self) -> bool:
        return await self.follower.refresh()

    async def readiness(self) -> dict[str, RunnerStatus]:
        async def status(handle: DeploymentHandle) -> RunnerStatus:
            try:
                return await asyncio.wait_for(handle.status.remote(), READINESS_TIMEOUT_S)
            except Exception:
                return RunnerStatus(ModelState.FAILED)

        names = list(self.runners)
        statuses = await asyncio.gather(*(status(self.runners[n]) for n in names))
        return dict(zip(names, statuses, strict=True))
