"""Shadow copies: started by the pipeline beside the answer, from the image it already
decoded; at most ``max_in_flight`` at once (the rest are dropped and counted, never
queued), stored with the answer they ran beside; a failing copy reaches no client."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.auth.tokens import Principal
from serve_app.catalog.routes import RouteConfig
from serve_app.catalog.spec import ModelSpec
from serve_app.codecs.types import EncodedImage, ImageFormat
from serve_app.job import Job
from serve_app.pipeline import Pipeline
from serve_app.records.inference import InferenceRecord
from serve_app.routing.plan import ServingPlan
from serve_app.runtime.examine import inspect_model
from serve_app.schemas.routes import RouteOut
from serve_app.settings import Settings
from serve_app.shadows import ShadowCopies
from tests.images import encode
from tests.local_app import results_of, trail_in
from tests.unit.onnx_builders import tiny_classifier

CALLER = Principal("dr-who", "clinician")
FILE = tiny_classifier([None, 1, 64, 64], labels=["no", "yes"])
PNG = encode(np.full((64, 64, 1), 128, np.uint8), "PNG")


def spec(ref: str) -> ModelSpec:
    return inspect_model(FILE, *ref.split(":"))


def routed(shadows: list[str]) -> ServingPlan:
    config = RouteConfig(arms=[{"model": "chest:1", "weight": 1}], shadow=shadows)
    route = RouteOut.stored("chest-ab", config.model_dump(mode="json"), "eng", datetime.now(UTC))
    refs = ["chest:1", *shadows]
    return ServingPlan({"chest": spec("chest:1")}, {"chest-ab": route}, {r: spec(r) for r in refs})


class GatedModel:
    """``call_model``: answers the version it is asked for once ``gate`` opens (the answer
    at once); a version named ``missing`` fails."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.versions: list[str] = []

    async def __call__(self, spec: ModelSpec, tensor: np.ndarray) -> np.ndarray:
        self.versions.append(spec.ref)
        if spec.version != "1":
            await self.gate.wait()
        if spec.version == "missing":
            raise RuntimeError("the runner is gone")
        return np.tile(np.array([[0.2, 0.8]], np.float32), (len(tensor), 1))


def scenario(directory: Path, shadows: list[str], max_in_flight: int, answers: int = 1) -> tuple:
    """The answers, the stored results and audit entries, counts, model and decodes."""

    async def run() -> tuple:
        async with trail_in(directory) as trail:
            return await with_trail(trail)

    async def with_trail(trail: DatabaseTrail) -> tuple:
        counts, model = Counter[str](), GatedModel()
        copies = ShadowCopies(trail, lambda outcome: counts.update([outcome]), max_in_flight)
        settings = Settings(models=[{"name": "chest"}], default_model="chest")
        pipeline = Pipeline(settings, {"chest": spec("chest:1")}, model, copies)
        pipeline.follow(routed(shadows))
        decodes = 0
        decode = pipeline.decode

        def counted(image: EncodedImage) -> object:
            nonlocal decodes
            decodes += 1
            return decode(image)

        pipeline.decode = counted  # type: ignore[assignment]  # counts decodes
        image = EncodedImage(PNG, ImageFormat.PNG)
        outcomes = []
        for _ in range(answers):
            outcomes += await pipeline.infer([Job.accept(image, CALLER, "chest-ab")])
        model.gate.set()
        await copies.drain()
        stored, entries = await results_of(trail), await trail.entries(0, 1000)
        return outcomes, stored, entries, counts, model, decodes

    return asyncio.run(run())


def test_copies_beyond_the_limit_are_dropped_and_the_rest_stored(tmp_path: Path) -> None:
    copies = ["chest:2", "chest:3", "chest:4"]
    outcomes, results, entries, counts, model, decodes = scenario(tmp_path, copies, 2)

    (answer,) = outcomes
    assert isinstance(answer, InferenceRecord) and answer.arm == "chest:1"
    # the answer is the ingress's to store
    assert answer.inference_id not in {r.inference_id for r in results}
    assert sorted(model.versions) == ["chest:1", "chest:2", "chest:3"]
    assert counts == {"dropped": 1, "stored": 2}
    stored = sorted(results, key=lambda r: r.arm or "")
    assert [(r.arm, r.endpoint, r.shadow_of, r.positive, r.requested_by) for r in stored] == [
        ("chest:2", "chest-ab", answer.inference_id, None, "dr-who"),
        ("chest:3", "chest-ab", answer.inference_id, None, "dr-who"),
    ]
    assert {r.inference_id for r in stored}.isdisjoint({answer.inference_id})
    assert {e.details["shadow_of"] for e in entries} == {answer.inference_id}
    assert decodes == 1  # the copies ran on the image the answer decoded


def test_a_failing_copy_is_counted_and_stores_nothing(tmp_path: Path) -> None:
    outcomes, results, entries, counts, _, _ = scenario(tmp_path, ["chest:missing"], 4)

    assert isinstance(outcomes[0], InferenceRecord)
    assert counts == {"failed": 1}
    assert results == [] and entries == []
