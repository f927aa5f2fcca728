"""POST /infer: results match ONNX Runtime, and every validation rule answers a clear 4xx."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.images import infer_body, pixels
from tests.oracle import direct_outputs
from tests.problems import PROBLEM_JSON, assert_problem, assert_still_serving


@pytest.mark.parametrize(
    ("image", "model"),
    [
        (pixels(1), "chest-xray-demo"),
        (pixels(2, 300, 200, dtype="uint16"), "chest-xray-demo"),
        (pixels(3, 128, 128, dtype="float32"), "chest-xray-demo"),
        (pixels(4, 224, 224, channels=3), "derm-demo"),
        (pixels(5, 100, 180, channels=3, dtype="float64"), "derm-demo"),
        (pixels(6, 224, 224, channels=1), "derm-demo:1.0.0"),
        (pixels(7, 256, 256, channels=3), None),
    ],
    ids=[
        "grey-uint8",
        "uint16-resized",
        "float32",
        "rgb",
        "rgb-float64-resized",
        "grey-to-rgb-model",
        "rgb-to-default-grey-model",
    ],
)
def test_outputs_equal_direct_onnxruntime(api: httpx.Client, model_store, image, model) -> None:
    response = api.post("/infer", json=infer_body(image, model=model))
    assert response.status_code == 200, response.text
    result = response.json()
    name = (model or "chest-xray-demo").split(":")[0]
    assert result["model_name"] == name and result["model_version"] == "1.0.0"
    np.testing.assert_allclose(
        result["outputs"], direct_outputs(model_store, name, image), atol=1e-5, rtol=0
    )


def test_response_applies_the_models_decision_rule(api: httpx.Client) -> None:
    result = api.post("/infer", json=infer_body(pixels(8))).json()
    assert result["labels"] == ["no_finding", "pneumonia"]
    assert result["threshold"] == 0.85
    assert result["confidence_score"] == pytest.approx(result["outputs"][1])
    expected = "pneumonia" if result["confidence_score"] > 0.85 else "no_finding"
    assert result["prediction"] == expected
    assert result["latency_ms"] > 0 and len(result["inference_id"]) == 36


def test_logit_models_report_softmax_confidence(api: httpx.Client) -> None:
    result = api.post("/infer", json=infer_body(pixels(9, 224, 224, 3), model="derm-demo")).json()
    logits = np.asarray(result["outputs"])
    softmax = np.exp(logits) / np.exp(logits).sum()
    assert result["confidence_score"] == pytest.approx(softmax[1])


def body(**changes: Any) -> dict[str, Any]:
    return {**infer_body(pixels(10, 64, 64)), **changes}


RULES = [
    # (name, body, status, field, rule)
    ("width-too-small", body(width=63, data=[0] * 63 * 64), 422, "width", "range"),
    ("width-too-large", body(width=2049, height=64, data=[0] * 2049 * 64), 422, "width", "range"),
    ("height-too-small", body(height=10, data=[0] * 640), 422, "height", "range"),
    ("length-mismatch", body(data=[0] * 100), 422, "data", "length"),
    ("uint8-above-range", body(data=[256] * 4096), 422, "data", "range"),
    ("uint8-negative", body(data=[-1] * 4096), 422, "data", "range"),
    ("uint16-above-range", body(dtype="uint16", data=[65536] * 4096), 422, "data", "range"),
    ("float-above-one", body(dtype="float32", data=[1.5] * 4096), 422, "data", "range"),
    ("float-negative", body(dtype="float64", data=[-0.1] * 4096), 422, "data", "range"),
    ("uint8-fraction", body(data=[1.5] * 4096), 422, "data", "integer"),
    ("channels-two", body(channels=2, data=[0] * 8192), 422, "channels", "literal_error"),
    ("dtype-unknown", body(dtype="int8"), 422, "dtype", "literal_error"),
    ("data-missing", {k: v for k, v in body().items() if k != "data"}, 422, "data", "missing"),
    ("data-empty", body(data=[]), 422, "data", "too_short"),
    ("data-not-list", body(data="pixels"), 422, "data", "list_type"),
    ("data-nested", body(data=[[1, 2]] * 2048), 422, "data.0", "float_type"),
    ("data-strings", body(data=["a"] * 4096), 422, "data.0", "float_parsing"),
    ("width-not-int", body(width="wide"), 422, "width", "int_type"),
    ("width-numeric-string", body(width="64"), 422, "width", "int_type"),
    ("width-float", body(width=64.0), 422, "width", "int_type"),
    ("height-boolean", body(height=True), 422, "height", "int_type"),
    ("channels-string", body(channels="1"), 422, "channels", "literal_error"),
    ("channels-boolean", body(channels=True), 422, "channels", "int_type"),
    ("unknown-field", body(colour="red"), 422, "colour", "extra_forbidden"),
    ("model-unknown", body(model="no-such-model"), 404, "model", "served"),
    ("model-version-unknown", body(model="chest-xray-demo:9.9.9"), 404, "model", "served"),
    (
        "model-path-traversal",
        body(model="../../etc/passwd"),
        422,
        "model",
        "string_pattern_mismatch",
    ),
    ("patient-id-empty", body(patient_id=""), 422, "patient_id", "string_too_short"),
    ("patient-id-too-long", body(patient_id="p" * 129), 422, "patient_id", "string_too_long"),
]


@pytest.mark.parametrize(
    ("name", "payload", "status", "field", "rule"), RULES, ids=[r[0] for r in RULES]
)
def test_each_rule_is_a_problem_naming_field_and_rule(
    api: httpx.Client, name, payload, status, field, rule
) -> None:
    assert_problem(api.post("/infer", json=payload), status, field, rule)
    assert_still_serving(api)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_rejected(api: httpx.Client, token: str) -> None:
    raw = '{{"width": 64, "height": 64, "dtype": "float32", "data": [{}{}]}}'.format(
        token, ", 0" * 4095
    )
    response = api.post("/infer", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert any(e["field"].startswith(("data", "body")) for e in response.json()["errors"])
    assert_still_serving(api)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"[1, 2, 3]", b"null", b'"text"', b"{" * 5000 + b"}" * 5000],
    ids=["broken", "empty", "array", "null", "string", "deeply-nested"],
)
def test_malformed_bodies_are_4xx(api: httpx.Client, raw: bytes) -> None:
    response = api.post("/infer", content=raw, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert_still_serving(api)


def test_unknown_route_and_method_are_problems(api: httpx.Client) -> None:
    assert api.get("/nowhere").headers["content-type"] == PROBLEM_JSON
    response = api.get("/infer")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
