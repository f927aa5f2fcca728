from __future__ import annotations

import asyncio
import io

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from serve_app.auth.tokens import Principal
from serve_app.catalog.spec import ModelSpec
from serve_app.codecs.types import DecodedImage, EncodedImage, ImageFormat
from serve_app.errors import InvalidInput, ModelOutputInvalid, NotFound
from serve_app.job import Job, Outcome
from serve_app.pipeline import Pipeline
from serve_app.preprocessing import prepare
from serve_app.runtime.examine import inspect_model
from serve_app.settings import LimitsSettings, Settings
from tests.unit.onnx_builders import log_of_brightness, tiny_classifier

CHEST = tiny_classifier(
    [None, 1, 64, 64],
    labels=["no_finding", "pneumonia"],
    metadata={"medai.positive_index": 1, "medai.threshold": 0.6},
)
DERM = tiny_classifier([None, 96, 80, 3], layout="NHWC", labels=["benign", "melanoma", "nevus"])
NAN_ON_DARK = log_of_brightness()
FILES = {"chest": CHEST, "derm": DERM, "nan": NAN_ON_DARK}
CALLER = Principal("dr-who", "clinician")


def job(image: DecodedImage | EncodedImage, ref: str | None = None) -> Job:
    return Job.accept(image, CALLER, ref)


class DirectRunner:
    """``call_model`` over real ONNX Runtime sessions; remembers what it was asked."""

    def __init__(self, specs: dict[str, ModelSpec]) -> None:
        self.specs = specs
        self.sessions = {
            name: ort.InferenceSession(FILES[name], providers=["CPUExecutionProvider"])
            for name in specs
        }
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    async def __call__(self, spec: ModelSpec, tensor: np.ndarray) -> np.ndarray:
        self.calls.append((spec.name, tensor.shape))
        session = self.sessions[spec.name]
        (out,) = session.run([spec.output_name], {spec.input_name: tensor})
        return out


@pytest.fixture
def specs() -> dict[str, ModelSpec]:
    return {"chest": inspect_model(CHEST, "chest", "1"), "derm": inspect_model(DERM, "derm", "4")}


@pytest.fixture
def runner(specs: dict[str, ModelSpec]) -> DirectRunner:
    return DirectRunner(specs)


@pytest.fixture
def pipeline(specs: dict[str, ModelSpec], runner: DirectRunner) -> Pipeline:
    settings = Settings(
        models=[{"name": "chest"}, {"name": "derm"}],
        default_model="chest",
        limits=LimitsSettings(),
    )
    return Pipeline(settings, specs, runner)


def infer_one(pipeline: Pipeline, image: DecodedImage | EncodedImage, ref: str | None) -> Outcome:
    (outcome,) = asyncio.run(pipeline.infer([job(image, ref)]))
    return outcome


def resolve(pipeline: Pipeline, ref: str | None) -> ModelSpec:
    return pipeline.target(job(DecodedImage(pixels=grey(), format=ImageFormat.PIXELS), ref)).spec


def grey(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 64, 1), dtype=np.uint8)


def test_resolve_default_model(pipeline: Pipeline) -> None:
    assert resolve(pipeline, None).ref == "chest:1"


@pytest.mark.parametrize(
    ("ref", "expected"), [("derm", "derm:4"), ("derm:4", "derm:4"), ("chest:1", "chest:1")]
)
def test_resolve_by_name_or_name_and_version(pipeline: Pipeline, ref: str, expected: str) -> None:
    assert resolve(pipeline, ref).ref == expected


def test_resolve_wrong_version_is_not_found(pipeline: Pipeline) -> None:
    with pytest.raises(NotFound) as info:
        resolve(pipeline, "derm:3")

    assert (info.value.field, info.value.rule) == ("model", "served")
    # NOTE: a caller who may infer is not told which version is in production.
    assert info.value.detail == "model derm:3 is not served"


@pytest.mark.parametrize("ref", ["absent", "absent:1", "chest-xray-demo"])
def test_resolve_unknown_model_is_not_found(pipeline: Pipeline, ref: str) -> None:
    with pytest.raises(NotFound) as info:
        resolve(pipeline, ref)

    assert (info.value.field, info.value.rule) == ("model", "served")


def test_infer_default_model_on_pixels(
    pipeline: Pipeline, runner: DirectRunner, specs: dict[str, ModelSpec]
) -> None:
    decoded = DecodedImage(pixels=grey(), format=ImageFormat.PIXELS)
    (expected,) = runner.sessions["chest"].run(None, {"image": prepare(decoded, specs["chest"])})

    prediction = infer_one(pipeline, decoded, None)

    assert (prediction.model_name, prediction.model_version) == ("chest", "1")
    assert prediction.labels == ["no_finding", "pneumonia"]
    np.testing.assert_allclose(prediction.outputs, expected[0], rtol=1e-6)
    assert prediction.threshold == 0.6
    assert prediction.confidence == pytest.approx(float(expected[0, 1]))
    assert prediction.frame is None and prediction.frames is None
    assert runner.calls == [("chest", (1, 1, 64, 64))]


def test_infer_named_model_decodes_an_uploaded_png(
    pipeline: Pipeline, runner: DirectRunner, specs: dict[str, ModelSpec]
) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    upload = EncodedImage(buffer.getvalue(), ImageFormat.PNG)
    direct_input = prepare(DecodedImage(pixels=pixels, format=ImageFormat.PNG), specs["derm"])
    (expected,) = runner.sessions["derm"].run(None, {"image": direct_input})

    prediction = infer_one(pipeline, upload, "derm:4")

    assert prediction.model_name == "derm"
    assert prediction.labels == ["benign", "melanoma", "nevus"]
    np.testing.assert_allclose(prediction.outputs, expected[0], rtol=1e-6)
    assert runner.calls == [("derm", (1, 96, 80, 3))]


def test_different_images_give_different_outputs(pipeline: Pipeline) -> None:
    first, second = (
        infer_one(pipeline, DecodedImage(pixels=grey(s), format=ImageFormat.PIXELS), None)
        for s in (1, 2)
    )

    assert first.outputs != second.outputs


def test_infer_unknown_model_never_calls_a_model(pipeline: Pipeline, runner: DirectRunner) -> None:
    decoded = DecodedImage(pixels=grey(), format=ImageFormat.PIXELS)

    assert isinstance(infer_one(pipeline, decoded, "absent"), NotFound)

    assert runner.calls == []


def test_infer_bad_upload_is_invalid_input(pipeline: Pipeline, runner: DirectRunner) -> None:
    upload = EncodedImage(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ImageFormat.PNG)

    assert isinstance(infer_one(pipeline, upload, None), InvalidInput)

    assert runner.calls == []


def test_jobs_for_each_model_travel_as_one_stacked_tensor(
    pipeline: Pipeline, runner: DirectRunner, specs: dict[str, ModelSpec]
) -> None:
    images = [DecodedImage(pixels=grey(s), format=ImageFormat.PIXELS) for s in range(4)]
    jobs = [job(images[0]), job(images[1], "derm"), job(images[2], "absent"), job(images[3])]

    outcomes = asyncio.run(pipeline.infer(jobs))

    assert isinstance(outcomes[2], NotFound)
    assert sorted(runner.calls) == [("chest", (2, 1, 64, 64)), ("derm", (1, 96, 80, 3))]
    for image, outcome, model in zip(
        images, outcomes, ["chest", "derm", None, "chest"], strict=True
    ):
        if model is None:
            continue
        tensor = prepare(image, specs[model])
        (expected,) = runner.sessions[model].run(None, {specs[model].input_name: tensor})
        assert outcome.model_name == model
        np.testing.assert_allclose(outcome.outputs, expected[0], rtol=1e-6)


def test_a_model_gets_at_most_its_max_batch_size_per_call(
    specs: dict[str, ModelSpec], runner: DirectRunner
) -> None:
    settings = Settings(
        models=[{"name": "chest", "max_batch_size": 2}, {"name": "derm"}], default_model="chest"
    )
    pipeline = Pipeline(settings, specs, runner)
    jobs = [job(DecodedImage(pixels=grey(s), format=ImageFormat.PIXELS)) for s in range(5)]

    outcomes = asyncio.run(pipeline.infer(jobs))

    assert sorted(shape[0] for _, shape in runner.calls) == [1, 2, 2]
    distinct = {tuple(o.outputs) for o in outcomes}
    assert len(distinct) == 5


def test_a_nan_answer_fails_that_image_alone() -> None:
    specs = {"nan": inspect_model(NAN_ON_DARK, "nan", "1")}
    runner = DirectRunner(specs)
    settings = Settings(models=[{"name": "nan"}], default_model="nan")
    pipeline = Pipeline(settings, specs, runner)
    dark, bright = (np.full((64, 64, 1), value, np.uint8) for value in (20, 240))
    jobs = [job(DecodedImage(pixels=p, format=ImageFormat.PIXELS)) for p in (dark, bright, dark)]

    outcomes = asyncio.run(pipeline.infer(jobs))

    assert runner.calls == [("nan", (3, 1, 64, 64))]  # one call: the model answered all three
    assert isinstance(outcomes[0], ModelOutputInvalid) and isinstance(
        outcomes[2], ModelOutputInvalid
    )
    assert (outcomes[0].field, outcomes[0].rule) == ("outputs", "finite")
    assert outcomes[1].prediction == "indeterminate"
    assert np.isfinite(outcomes[1].outputs).all()
