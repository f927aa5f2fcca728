"""What the HTTP layer needs from whatever runs the models."""

from __future__ import annotations

import random
from typing import Protocol

import numpy as np

from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.store import ModelStore
from serve_app.codecs.types import EncodedImage
from serve_app.errors import MedAIError
from serve_app.job import Job, Outcome
from serve_app.pipeline import Pipeline
from serve_app.readiness import Component, model_components
from serve_app.runtime.runner import Runner
from serve_app.settings import Settings
from serve_app.shadows import ShadowCopies


class Backend(Protocol):
    async def infer(self, jobs: list[Job]) -> list[Outcome]:
        """One outcome per job, in order; a client error is an outcome, not raised."""
        ...

    async def preview(self, image: EncodedImage, model: str | None) -> bytes | MedAIError:
        """The upload as ``model`` sees it, as a PNG (``Pipeline.preview``)."""
        ...

    async def readiness(self) -> list[Component]:
        """Each component behind the ingress, each asked with a deadline; never raises."""
        ...


class LocalBackend:
    """Everything in this process: the pipeline, and a ``Runner`` per model (the model
    runner deployment's own class). For tests, and as a baseline to measure Serve by."""

    def __init__(
        self,
        settings: Settings,
        shadows: ShadowCopies | None = None,
        rng: random.Random | None = None,
    ) -> None:
        store = ModelStore(settings.model_store)
        self.specs = {m.name: store.starting(m.name, m.version) for m in settings.models}
        self.runners = {name: Runner(settings, spec) for name, spec in self.specs.items()}
        self.pipeline = Pipeline(settings, self.specs, self._call_model, shadows, rng)

    async def _call_model(self, spec: ModelSpec, tensor: np.ndarray) -> np.ndarray:
        return await self.runners[spec.name].infer(tensor, spec.sha256)

    async def infer(self, jobs: list[Job]) -> list[Outcome]:
        return await self.pipeline.infer(jobs)

    async def preview(self, image: EncodedImage, model: str | None) -> bytes | MedAIError:
        return await self.pipeline.preview(image, model)

    async def readiness(self) -> list[Component]:
        statuses = {name: runner.status() for name, runner in self.runners.items()}
        return [Component("Preprocessor", True), *model_components(statuses, self.specs)]
