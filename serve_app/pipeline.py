"""The protocol-neutral inference path: resolve model, decode, preprocess, run, interpret.

The Ray preprocessing deployment and the in-process backend both use it; only
``call_model`` differs (a Serve handle call, or a local ONNX Runtime session).
Work arrives as a list of jobs so each hop can carry many requests in one
message: the images of one model go to it as one stacked tensor. Each answer's
``InferenceRecord`` is built here, once; a route's shadow copies start here too, from
the image already decoded.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import numpy as np

from serve_app.catalog.spec import ModelSpec
from serve_app.codecs.decode import Decoder
from serve_app.codecs.images import encode_png
from serve_app.codecs.types import DecodedImage, EncodedImage, TensorInput
from serve_app.errors import MedAIError, NotFound
from serve_app.job import Job, Outcome
from serve_app.preprocessing import fit, prepare, view
from serve_app.records.inference import InferenceRecord
from serve_app.routing.plan import ServingPlan, Target
from serve_app.runtime.batch import split, stack
from serve_app.runtime.kinds import interpret
from serve_app.runtime.kinds.geometry import SourceGeometry
from serve_app.settings import Settings
from serve_app.shadows import ShadowCopies

ModelCall = Callable[[ModelSpec, np.ndarray], Awaitable[np.ndarray]]
"""Run an (n, ...) tensor through that model version; return its n output rows."""


@dataclass(frozen=True)
class _Prepared:
    target: Target
    tensor: np.ndarray
    decoded: DecodedImage | TensorInput
    """What the tensor was made from: what a shadow copy starts from too."""

    @property
    def spec(self) -> ModelSpec:
        return self.target.spec


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        specs: Mapping[str, ModelSpec],
        call_model: ModelCall,
        shadows: ShadowCopies | None = None,
        rng: random.Random | None = None,
    ):
        self.settings = settings
        self.plan = ServingPlan(dict(specs))
        self.call_model = call_model
        self.shadows = shadows
        self.rng = rng or random.Random()
        self.decode = Decoder(settings.decoding, settings.limits)

    def follow(self, plan: ServingPlan) -> None:
        """Answer by ``plan`` from now on (a hot swap, a route change)."""
        self.plan = plan

    def target(self, job: Job) -> Target:
        model = job.model or self.settings.default_model
        shadow = job.shadow_of is not None
        return self.plan.target(model, job.patient_ref, self.rng, shadow=shadow)

    def prepare(self, job: Job) -> _Prepared | MedAIError:
        try:
            target = self.target(job)
            image = job.image
            if isinstance(image, TensorInput):
                return _Prepared(target, fit(image, target.spec), image)
            decoded = self.decode(image) if isinstance(image, EncodedImage) else image
            return _Prepared(target, prepare(decoded, target.spec), decoded)
        except MedAIError as exc:
            return exc

    async def preview(self, image: EncodedImage, model: str | None) -> bytes | MedAIError:
        """The upload as the model that ``model`` names would see it (decoded, DICOM windowed,
        at its size and channels, before normalisation) as a PNG; a client error as a value,
        as ``infer`` gives it."""

        def draw() -> bytes:
            spec = self.plan.describe(model or self.settings.default_model)
            return encode_png(view(self.decode(image), spec))

        try:
            return await asyncio.to_thread(draw)
        except MedAIError as exc:
            return exc

    async def refresh_plan(self) -> bool:
        """Ask for the newest plan now; whether it changed. A pipeline whose plan is
        handed to it (in-process) has none newer; a polling one overrides this."""
        return False

    async def infer(self, jobs: list[Job]) -> list[Outcome]:
        # NOTE: decoding is CPU-bound; off the event loop so other requests keep flowing.
        prepared = await asyncio.to_thread(lambda: [self.prepare(job) for job in jobs])
        missed = [i for i, p in enumerate(prepared) if _unserved(p)]
        if missed and await self.refresh_plan():
            # NOTE: a route or promotion newer than this replica's last poll; the target
            # is resolved before anything is decoded, so nothing was decoded for these.
            again = await asyncio.to_thread(lambda: [self.prepare(jobs[i]) for i in missed])
            for i, p in zip(missed, again, strict=True):
                prepared[i] = p
        # NOTE: grouped by version, not name: a hot swap during this call may have
        # prepared some images for the old version and some for the new.
        by_version: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(prepared):
            if isinstance(p, _Prepared):
                by_version[p.spec.sha256].append(i)
        rows: dict[int, np.ndarray] = {}
        await asyncio.gather(*(self._run(idx, prepared, rows) for idx in by_version.values()))
        outcomes = [
            _outcome(job, p, rows.get(i))
            for i, (job, p) in enumerate(zip(jobs, prepared, strict=True))
        ]
        if self.shadows is not None:
            copies = [
                job.copy_for(ref, p.decoded, answer)
                for job, p, answer in zip(jobs, prepared, outcomes, strict=True)
                if isinstance(p, _Prepared) and isinstance(answer, InferenceRecord)
                for ref in p.target.shadows
            ]
            self.shadows.send(copies, self.infer)
        return outcomes

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


def _unserved(prepared: _Prepared | MedAIError) -> bool:
    """Whether the job named what the plan does not serve (no image was decoded for it)."""
    return isinstance(prepared, NotFound) and prepared.rule == "served"


def _outcome(job: Job, prepared: _Prepared | MedAIError, row: np.ndarray | None) -> Outcome:
    """The job's record, built from the model's interpreted answer; or its error."""
    if isinstance(prepared, MedAIError):
        return prepared
    assert row is not None  # every prepared image got its row, or infer() raised
    spec, target, answer = prepared.spec, prepared.target, job.shadow_of
    image = prepared.decoded if isinstance(prepared.decoded, DecodedImage) else None
    # NOTE: a tensor (v2) was never resized: its answer stays on the model's input.
    geometry = (
        SourceGeometry(image.height, image.width, image.pixel_spacing_mm)
        if image
        else SourceGeometry(spec.height, spec.width)
    )
    try:
        interpretation = interpret(row[0], spec, geometry)
    except MedAIError as exc:  # a NaN answer fails this image, not its neighbours
        return exc
    return InferenceRecord(
        **vars(interpretation),
        inference_id=job.inference_id,
        model_name=spec.name,
        model_version=spec.version,
        # NOTE: clocks of one host, or of hosts kept in step: never below zero.
        latency_ms=round(max(0.0, time.time() - job.accepted_at) * 1000, 3),
        requested_by=job.requested_by,
        role=job.role,
        labels=spec.metadata.labels,
        patient_ref=job.patient_ref,
        batch_id=job.batch_id,
        frame=image.frame if image else None,  # a tensor (v2) comes from no file
        frames=image.frames if image else None,
        # NOTE: a shadow copy is filed under the route of the answer it ran beside.
        endpoint=answer.endpoint if answer else target.endpoint,
        arm=job.model if answer else target.arm,
        shadow_of=answer.inference_id if answer else None,
        model_sha256=spec.sha256,
        source=image.dicom_source if image else None,
    )
