"""The v2 answer's outputs (the model's own first, then the platform's, one row each),
and the limit on a v2 body's JSON part."""

from __future__ import annotations

import json

import numpy as np
import pytest

from serve_app.errors import PayloadTooLarge
from serve_app.http.v2_routes import _answer, _outputs
from serve_app.records.inference import InferenceRecord
from serve_app.runtime.examine import inspect_model
from serve_app.schemas.v2 import InferCall, parse_infer
from tests.unit.onnx_builders import tiny_classifier

SPEC = inspect_model(tiny_classifier([None, 1, 64, 64], labels=["no", "yes"]), "chest", "1")


def record(i: int) -> InferenceRecord:
    return InferenceRecord(
        outputs=(0.25 * i, 1 - 0.25 * i), confidence=0.5, prediction="yes", threshold=0.5,
        inference_id=f"inf-{i}", model_name="chest", model_version="1", latency_ms=1.0,
    )  # fmt: skip


def test_every_output_has_one_row_per_record() -> None:
    answer = _answer([record(0), record(1)], SPEC, InferCall(None, [], None, False))
    assert [t.name for t in answer] == [SPEC.output_name, "prediction", "confidence",
                                        "inference_id"]  # fmt: skip
    model_output = answer[0].data
    assert isinstance(model_output, np.ndarray) and model_output.shape == (2, 2)
    np.testing.assert_allclose(model_output[1], [0.25, 0.75])
    assert answer[3].data == [b"inf-0", b"inf-1"]


def test_a_model_output_named_like_a_platform_output_wins() -> None:
    clashing = SPEC.model_copy(update={"output_name": "prediction"})
    assert [name for name, _, _ in _outputs(clashing)] == [
        "prediction",
        "confidence",
        "inference_id",
    ]
    (prediction, *_) = _answer([record(1)], clashing, InferCall(None, [], None, False))
    assert prediction.datatype == "FP32" and prediction.shape == (1, 2)


def test_a_json_part_over_its_limit_is_a_413_before_it_is_parsed() -> None:
    """A JSON list costs many times its size while parsed: the JSON part of a v2 body is
    held to ``limits.max_json_body_bytes``, raw tensor bytes only to the body limit."""
    row = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0.0] * 4}
    body = json.dumps({"inputs": [row]}).encode()
    assert parse_infer(body, None, 10**6, len(body)).inputs[0].shape == (1, 4)
    with pytest.raises(PayloadTooLarge) as refused:
        parse_infer(body, None, 10**6, len(body) - 1)
    assert refused.value.field == "body" and refused.value.rule == "max-size"
    raw = np.zeros((1, 4), np.float32).tobytes()
    head = json.dumps({"inputs": [row | {"data": None, "parameters":
                                         {"binary_data_size": 16}}]}).encode()  # fmt: skip
    assert parse_infer(head + raw, str(len(head)), 10**6, len(head)).inputs[0].shape == (1, 4)
