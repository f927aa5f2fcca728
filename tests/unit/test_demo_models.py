from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from serve_app.demo_models import (
    DEMO_MODELS,
    build_chest_xray_demo,
    build_derm_demo,
    build_lesion_detect_demo,
    build_lesion_seg_demo,
    build_resnet18_bench,
    build_resnet50_bench,
)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass(frozen=True)
class Expected:
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    classes: int
    metadata: dict[str, object]


EXPECTED = {
    "chest-xray-demo": Expected(
        "pixel_values",
        (1, 256, 256),
        "probabilities",
        2,
        {
            "medai.labels": ["no_finding", "pneumonia"],
            "medai.positive_index": 1,
            "medai.threshold": 0.85,
            "medai.mean": [0.5],
            "medai.std": [0.25],
            "medai.output_kind": "probabilities",
            "medai.clinical_domain": "radiology",
        },
    ),
    "derm-demo": Expected(
        "input",
        (3, 224, 224),
        "logits",
        2,
        {
            "medai.labels": ["benign", "malignant"],
            "medai.positive_index": 1,
            "medai.threshold": 0.7,
            "medai.mean": IMAGENET_MEAN,
            "medai.std": IMAGENET_STD,
            "medai.output_kind": "logits",
            "medai.clinical_domain": "dermatology",
        },
    ),
    **{
        name: Expected(
            "images",
            (3, 224, 224),
            "probabilities",
            1000,
            {
                "medai.labels": [f"class_{i}" for i in range(1000)],
                "medai.threshold": 0.5,
                "medai.mean": IMAGENET_MEAN,
                "medai.std": IMAGENET_STD,
                "medai.output_kind": "probabilities",
                "medai.clinical_domain": "benchmark",
            },
        )
        for name in ("resnet18-bench", "resnet50-bench")
    },
}
BUILDERS = {m.name: m.build for m in DEMO_MODELS}
NAMES = list(EXPECTED)
"""The classifiers; the region demos are tests/unit/test_region_demos.py's."""
REGION_DEMOS = ["lesion-seg-demo", "lesion-detect-demo"]


@cache
def built(name: str) -> bytes:
    return BUILDERS[name]()


@cache
def session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(built(name), providers=["CPUExecutionProvider"])


def param_count(model_bytes: bytes) -> int:
    model = onnx.load_from_string(model_bytes)
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def test_catalog_lists_the_models_and_only_the_benchmarks_are_on_demand() -> None:
    assert [m.name for m in DEMO_MODELS] == NAMES[:2] + REGION_DEMOS + NAMES[2:]
    assert {m.version for m in DEMO_MODELS} == {"1.0.0"}
    assert [m.name for m in DEMO_MODELS if m.on_demand] == ["resnet18-bench", "resnet50-bench"]
    builders = [
        build_chest_xray_demo,
        build_derm_demo,
        build_lesion_seg_demo,
        build_lesion_detect_demo,
        build_resnet18_bench,
        build_resnet50_bench,
    ]
    assert [m.build for m in DEMO_MODELS] == builders


@pytest.mark.parametrize("name", NAMES)
def test_build_is_byte_identical_across_runs(name: str) -> None:
    assert BUILDERS[name]() == built(name)


@pytest.mark.parametrize("name", NAMES)
def test_model_is_valid_and_readable_by_onnxruntime(name: str) -> None:
    model = onnx.load_from_string(built(name))
    onnx.checker.check_model(model)
    assert model.ir_version <= 13
    assert model.producer_name == "medai-flow"
    assert model.model_version == 1
    assert "NOT for clinical use" in model.doc_string


@pytest.mark.parametrize("name", NAMES)
def test_input_and_output_signature(name: str) -> None:
    expected = EXPECTED[name]
    (inp,) = session(name).get_inputs()
    (out,) = session(name).get_outputs()
    assert inp.name == expected.input_name
    assert inp.type == out.type == "tensor(float)"
    assert isinstance(inp.shape[0], str | None)
    assert tuple(inp.shape[1:]) == expected.input_shape
    assert out.name == expected.output_name
    assert isinstance(out.shape[0], str | None)
    assert out.shape[1] == expected.classes


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_random_inputs_gives_finite_distinct_outputs(name: str) -> None:
    expected = EXPECTED[name]
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((2, *expected.input_shape), dtype=np.float32)
    (out,) = session(name).run(None, {expected.input_name: batch})
    assert out.shape == (2, expected.classes)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert not np.array_equal(out[0], out[1])
    if expected.metadata["medai.output_kind"] == "probabilities":
        assert ((out >= 0) & (out <= 1)).all()
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_metadata_props_parse_to_the_model_card(name: str) -> None:
    props = session(name).get_modelmeta().custom_metadata_map
    description = props.pop("medai.description")
    assert "synthetic" in description.lower()
    assert "NOT for clinical use" in description
    parsed = {
        key: value if key in {"medai.output_kind", "medai.clinical_domain"} else json.loads(value)
        for key, value in props.items()
    }
    assert parsed == EXPECTED[name].metadata


def test_chest_xray_demo_is_small() -> None:
    assert len(built("chest-xray-demo")) < 1_000_000


def test_resnet50_bench_has_resnet50_parameter_count() -> None:
    assert 25e6 < param_count(built("resnet50-bench")) < 26e6


def test_resnet18_bench_has_resnet18_parameter_count() -> None:
    assert 11e6 < param_count(built("resnet18-bench")) < 12e6
