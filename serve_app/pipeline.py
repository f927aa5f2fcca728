"""The protocol-neutral inference path: resolve model, decode, preprocess, run, interpret.

The Ray preprocessing deployment and the in-process backend both use it; only
``call_model`` differs (a Serve handle call, or a local ONNX Runtime session).
Work arrives as a list of jobs so each hop can carry many requests in one
message: the images of one model go to it as one stacked tensor.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import numpy as np

from serve_app.catalog.spec import ModelSpec
from serve_app.codecs.decode import Decoder
from serve_app.codecs.types import DecodedImage, EncodedImage
from serve_app.errors import MedAIError
from serve_app.preprocessing import prepare
from serve_app.routing.plan import ServingPlan, Target
from serve_app.runtime.batch import split, stack
from serve_app.runtime.postprocess import Interpretation, interpret
from serve_app.settings import Settings

ModelCall = Callable[[ModelSpec, np.ndarray], Awaitable[np.ndarray]]
"""Run an (n, ...) tensor through that model version; return its n output rows."""


@dataclass(frozen=True)
class Job:
    """One image to classify, with the model the client asked for (``None``: default)."""

    image: DecodedImage | EncodedImage
    model: str | None = None
    key: str | None = None
    """What a sticky route keys on: the patient's pseudonym."""
    shadow: bool = False
    """A route's shadow copy (never a client's request): may run a shadow version."""


@dataclass(frozen=True)
class Prediction:
    model_name: str
    model_version: str
    labels: list[str]
    interpretation: Interpretation
    frame: int | None = None
    frames: int | None = None
    endpoint: str | None = None
    """The route that chose this version, if one did."""
    arm: str | None = None
    shadows: tuple[str, ...] = ()
    """Versions the route wants a copy of this request sent to."""


Outcome = Prediction | MedAIError
"""A client's error is a value here, so one bad image never fails its neighbours."""


@dataclass(frozen=True)
class _Prepared:
    target: Target
    tensor: np.ndarray
    decoded: DecodedImage

    @property
    def spec(self) -> ModelSpec:
        return self.target.spec


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        specs: Mapping[str, ModelSpec],
        call_model: ModelCall,
        rng: random.Random | None = None,
    ):
        self.settings = settings
        self.plan = ServingPlan(dict(specs))
        self.call_model = call_model
        self.rng = rng or random.Random()
        self.decode = Decoder(settings.decoding, settings.limits)

    def follow(self, plan: ServingPlan) -> None:
        """Answer by ``plan`` from now on (a hot swap, a route change)."""
        self.plan = plan

    def target(self, job: Job) -> Target:
        model = job.model or self.settings.default_model
        return self.plan.target(model, job.key, self.rng, shadow=job.shadow)

    def prepare(self, job: Job) -> _Prepared | MedAIError:
        try:
            target = self.target(job)
            image = job.image
            decoded = self.decode(image) if isinstance(image, EncodedImage) else image
            return _Prepared(target, prepare(decoded, target.spec), decoded)
        except MedAIError as exc:
            return exc

    async def infer(self, jobs: list[Job]) -> list[Outcome]:
        # NOTE: decoding is CPU-bound; off the event loop so other requests keep flowing.
        prepared = await asyncio.to_thread(lambda: [self.prepare(job) for job in jobs])
        # NOTE: grouped by version, not name: a hot swap during this call may have
        # prepared some images for the old version and some for the new.
        by_version: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(prepared):
            if isinstance(p, _Prepared):
                by_version[p.spec.sha256].append(i)
        rows: dict[int, np.ndarray] = {}
        await asyncio.gather(*(self._run(idx, prepared, rows) for idx in by_version.values()))
        return [self._outcome(p, rows.get(i)) for i, p in enumerate(prepared)]

    async def _run(self, indices: list[int], prepared: list, rows: dict[int, np.ndarray]) -> None:
        """Send one version its images as stacked tensors of at most its ``max_batch_size``."""
        spec = prepared[indices[0]].spec
        config = self.settings.model(spec.name)
        size = config.max_batch_size if config else 1

        async def chunk(part: list[int]) -> None:
            batch, sizes = stack([prepared[i].tensor for i in part])
            outputs = await self.call_model(spec, batch)
            rows.update(zip(part, split(outputs, sizes), strict=True))

        await asyncio.gather(*(chunk(indices[s : s + size]) for s in range(0, len(indices), size)))

    @staticmethod
    def _outcome(prepared: _Prepared | MedAIError, row: np.ndarray | None) -> Outcome:
        if isinstance(prepared, MedAIError):
            return prepared
        assert row is not None  # every prepared image got its row, or infer() raised
        spec, target = prepared.spec, prepared.target
        try:
            interpretation = interpret(row[0], spec.metadata)
        except MedAIError as exc:  # a NaN answer fails this image, not its neighbours
            return exc
        return Prediction(
            model_name=spec.name,
            model_version=spec.version,
            labels=spec.metadata.labels,
            interpretation=interpretation,
            frame=prepared.decoded.frame,
            frames=prepared.decoded.frames,
            endpoint=target.endpoint,
            arm=target.arm,
            shadows=target.shadows,
        )
