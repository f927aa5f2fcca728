from __future__ import annotations

import asyncio

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.hops import Hop
from serve_app.logs import configure_logging
from serve_app.pipeline import Job, Outcome, Pipeline
from serve_app.registry.lifecycle import ModelState
from serve_app.registry.spec import ModelSpec
from serve_app.settings import Settings

READINESS_TIMEOUT_S = 5.0


@serve.deployment(max_ongoing_requests=64)
class Preprocessor:
    """Decode PNG/JPEG/DICOM, shape pixels to the target model's input, and call it.

    Calling the model from here, rather than returning the tensor to the
    ingress, keeps pixels to one hop after decoding. Each call carries a list
    of jobs, and each model gets its share as one stacked tensor.
    """

    def __init__(
        self,
        settings: Settings,
        specs: dict[str, ModelSpec],
        runners: dict[str, DeploymentHandle],
    ) -> None:
        configure_logging(settings.log_level)
        self.runners = runners
        self.hops = {name: Hop(handle) for name, handle in runners.items()}
        self.pipeline = Pipeline(settings, specs, self._call_model)

    async def _call_model(self, name: str, tensor: np.ndarray) -> np.ndarray:
        return await self.hops[name](tensor.nbytes).infer.remote(tensor)

    async def infer(self, jobs: list[Job]) -> list[Outcome]:
        # NOTE: client errors come back as values, not raised: Ray would log a
        # traceback for each and wrap it in RayTaskError.
        return await self.pipeline.infer(jobs)

    async def readiness(self) -> dict[str, ModelState]:
        async def state(handle: DeploymentHandle) -> ModelState:
            try:
                return await asyncio.wait_for(handle.state.remote(), READINESS_TIMEOUT_S)
            except Exception:
                return ModelState.FAILED

        names = list(self.runners)
        states = await asyncio.gather(*(state(self.runners[n]) for n in names))
        return dict(zip(names, states, strict=True))
