"""Shadow copies: sent after the answer, at most ``max_in_flight`` at once (the rest are
dropped and counted, never queued), stored with the answer they ran beside; a failing
copy reaches no client."""

from __future__ import annotations

import asyncio

import numpy as np

from serve_app.audit.trail import MemoryTrail
from serve_app.auth.tokens import Principal
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.errors import NotFound
from serve_app.http.metrics import Metrics
from serve_app.http.shadows import ShadowCopies
from serve_app.pipeline import Job, Outcome, Prediction
from serve_app.runtime.postprocess import Interpretation
from serve_app.schemas.infer import InferResponse

CALLER = Principal("dr-who", "clinician")
ANSWER = InferResponse(
    inference_id="answer-1", model_name="chest", model_version="1", outputs=[0.9, 0.1],
    labels=["no", "yes"], confidence_score=0.1, prediction="no", threshold=0.5,
    latency_ms=3.0, endpoint="chest-ab", arm="chest:1",
)  # fmt: skip
JOB = Job(DecodedImage(np.zeros((64, 64, 1), np.uint8), ImageFormat.PIXELS), "chest-ab")


class GatedBackend:
    """Answers each job with the version it pins, once ``gate`` opens; counts calls."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.jobs: list[Job] = []

    async def infer(self, jobs: list[Job]) -> list[Outcome]:
        self.jobs += jobs
        await self.gate.wait()
        name, _, version = (jobs[0].model or "").partition(":")
        if version == "missing":
            return [NotFound("gone", field="model", rule="served")]
        interpretation = Interpretation([0.2, 0.8], 0.8, "yes", 0.5, positive=True)
        return [Prediction(name, version, ["no", "yes"], interpretation)]

    async def readiness(self) -> list:
        return []


def copies_of(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("medai_shadow_copies_total", {"outcome": outcome})


def test_copies_beyond_the_limit_are_dropped_and_the_rest_stored() -> None:
    async def scenario() -> tuple[GatedBackend, MemoryTrail, Metrics]:
        backend, trail, metrics = GatedBackend(), MemoryTrail(), Metrics()
        shadows = ShadowCopies(backend, trail, metrics, max_in_flight=2)
        shadows.send(JOB, ANSWER, ("chest:2", "chest:3", "chest:4"), CALLER, None)
        shadows.send(JOB, ANSWER, ("chest:5",), CALLER, None)
        await asyncio.sleep(0)  # NOTE: the copies start; the gate holds them
        backend.gate.set()
        while shadows._tasks:
            await asyncio.sleep(0.01)
        return backend, trail, metrics

    backend, trail, metrics = asyncio.run(scenario())

    assert [job.model for job in backend.jobs] == ["chest:2", "chest:3"]
    assert copies_of(metrics, "dropped") == 2 and copies_of(metrics, "stored") == 2
    stored = sorted(trail.results.values(), key=lambda r: r.model_version)
    assert [(r.arm, r.endpoint, r.shadow_of, r.positive) for r in stored] == [
        ("chest:2", "chest-ab", "answer-1", True),
        ("chest:3", "chest-ab", "answer-1", True),
    ]
    assert {e.details["shadow_of"] for e in trail.chain} == {"answer-1"}


def test_a_failing_copy_is_counted_and_stores_nothing() -> None:
    async def scenario() -> tuple[MemoryTrail, Metrics]:
        backend, trail, metrics = GatedBackend(), MemoryTrail(), Metrics()
        backend.gate.set()
        shadows = ShadowCopies(backend, trail, metrics, max_in_flight=4)
        shadows.send(JOB, ANSWER, ("chest:missing",), CALLER, None)
        while shadows._tasks or not copies_of(metrics, "failed"):
            await asyncio.sleep(0.01)
        return trail, metrics

    trail, metrics = asyncio.run(scenario())
    assert copies_of(metrics, "failed") == 1
    assert trail.results == {} and trail.chain == []
