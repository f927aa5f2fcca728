from __future__ import annotations

import numpy as np
import pytest

from serve_app.catalog.spec import (
    Layout,
    ModelMetadata,
    dims,
    infer_layout,
    numpy_dtype,
    parse_metadata,
)
from serve_app.errors import InvalidInput
from tests.unit.onnx_builders import make_spec


def test_metadata_defaults_when_nothing_is_declared() -> None:
    meta = parse_metadata({})

    assert meta == ModelMetadata()
    assert meta.labels == ["negative", "positive"]
    assert meta.threshold == 0.85
    assert meta.positive_index is None
    assert meta.output_kind == "probabilities"
    assert meta.mean is None and meta.std is None and meta.layout is None


def test_metadata_values_are_json() -> None:
    meta = parse_metadata(
        {
            "medai.labels": '["no_finding", "pneumonia", "effusion"]',
            "medai.positive_index": "1",
            "medai.threshold": "0.5",
            "medai.mean": "[0.485, 0.456, 0.406]",
            "medai.std": "[0.229, 0.224, 0.225]",
            "medai.output_kind": '"logits"',
        }
    )

    assert meta.labels == ["no_finding", "pneumonia", "effusion"]
    assert meta.positive_index == 1
    assert meta.threshold == 0.5
    assert meta.mean == [0.485, 0.456, 0.406]
    assert meta.std == [0.229, 0.224, 0.225]
    assert meta.output_kind == "logits"


def test_plain_strings_need_no_json_quoting() -> None:
    meta = parse_metadata(
        {
            "medai.output_kind": "logits",
            "medai.layout": "NHWC",
            "medai.clinical_domain": "dermatology",
            "medai.description": "Skin lesion classifier, v3 (research use only)",
        }
    )

    assert meta.output_kind == "logits"
    assert meta.layout is Layout.NHWC
    assert meta.clinical_domain == "dermatology"
    assert meta.description == "Skin lesion classifier, v3 (research use only)"


def test_keys_without_the_prefix_and_unknown_keys_are_ignored() -> None:
    meta = parse_metadata({"threshold": "0.1", "medai.unknown": "1", "author": "someone"})

    assert meta.threshold == 0.85


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("medai.threshold", "1.5"),
        ("medai.threshold", "-0.1"),
        ("medai.labels", "pneumonia"),
        ("medai.output_kind", "scores"),
        ("medai.layout", "CHW"),
        ("medai.positive_index", "first"),
    ],
)
def test_bad_metadata_is_invalid_input(key: str, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_metadata({key: value})

    assert (info.value.field, info.value.rule) == ("file", "model-metadata")
    assert key in info.value.detail


@pytest.mark.parametrize(
    ("key", "value"), [("medai.description", "42"), ("medai.clinical_domain", "null")]
)
def test_plain_string_that_looks_like_json_stays_a_string(key: str, value: str) -> None:
    meta = parse_metadata({key: value})

    assert getattr(meta, key.removeprefix("medai.")) == value


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ([None, 3, 224, 224], Layout.NCHW),
        ([1, 1, 64, 64], Layout.NCHW),
        ([None, 224, 224, 3], Layout.NHWC),
        ([None, 64, 64, 1], Layout.NHWC),
    ],
)
def test_layout_is_inferred_from_the_channel_axis(shape: list[int | None], layout: Layout) -> None:
    assert infer_layout(shape, None) is layout


@pytest.mark.parametrize("declared", [Layout.NCHW, Layout.NHWC])
def test_declared_layout_wins(declared: Layout) -> None:
    assert infer_layout([None, 3, 64, 3], declared) is declared
    assert infer_layout([None, 64, 64, 64], declared) is declared


@pytest.mark.parametrize("shape", [[None, 64, 64, 64], [None, 4, 64, 64], [None, None, None, None]])
def test_unknown_layout_is_invalid_input(shape: list[int | None]) -> None:
    with pytest.raises(InvalidInput) as info:
        infer_layout(shape, None)

    assert (info.value.field, info.value.rule) == ("file", "model-input")


def test_dims_turn_symbolic_and_unknown_dimensions_into_none() -> None:
    assert dims(["batch", 3, None, 0, -1, 224]) == [None, 3, None, None, None, 224]


def test_numpy_dtype_of_onnx_types() -> None:
    assert numpy_dtype("tensor(float)") == np.float32
    assert numpy_dtype("tensor(uint8)") == np.uint8


def test_unsupported_onnx_type_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        numpy_dtype("tensor(string)")

    assert info.value.rule == "model-input"


def test_nchw_spec_properties() -> None:
    spec = make_spec([None, 1, 256, 128], Layout.NCHW)

    assert (spec.channels, spec.height, spec.width) == (1, 256, 128)
    assert spec.dynamic_batch is True
    assert spec.ref == "chest:3"
    assert spec.dtype == np.float32


def test_nhwc_spec_properties() -> None:
    spec = make_spec([4, 256, 128, 3], Layout.NHWC, dtype="float16")

    assert (spec.channels, spec.height, spec.width) == (3, 256, 128)
    assert spec.dynamic_batch is False
    assert spec.dtype == np.float16


def test_spec_is_frozen() -> None:
    spec = make_spec([None, 3, 64, 64], Layout.NCHW)

    with pytest.raises(ValueError):
        spec.version = "4"  # type: ignore[misc]
