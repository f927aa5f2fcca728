"""What the registry reads, assumes and refuses in a model file: every finding, each with
its fix (``medai models check``), and registration refusing on the first refusal."""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from serve_app.demo_models import DEMO_MODELS
from serve_app.errors import InvalidInput
from serve_app.runtime.examine import MAX_IR_VERSION, MAX_OPSET, examine, inspect_model
from serve_app.runtime.findings import Examination, Verdict
from tests.unit.onnx_builders import (
    leaking_classifier,
    three_d_input_model,
    tiny_classifier,
    two_input_model,
)

COMPLETE = {
    "medai.layout": "NCHW",
    "medai.positive_index": 1,
    "medai.threshold": 0.5,
    "medai.output_kind": "probabilities",
    "medai.mean": [0.5],
    "medai.std": [0.25],
}
"""Every key the registry would otherwise assume (labels come from the builder)."""


def with_opset(data: bytes, opset: int) -> bytes:
    model = onnx.load_from_string(data)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", opset))
    return model.SerializeToString()


def verdicts(found: Examination, verdict: Verdict) -> list[str]:
    return [f.rule for f in found.findings if f.verdict is verdict]


@pytest.mark.parametrize("demo", DEMO_MODELS, ids=[d.name for d in DEMO_MODELS])
def test_the_demo_models_would_register(demo) -> None:
    data = demo.build()

    found = examine(data, demo.name, demo.version)

    assert found.refusals == []
    assert found.spec == inspect_model(data, demo.name, demo.version)
    assert {"onnx", "model-input", "model-output"} <= set(verdicts(found, Verdict.OK))


def test_a_complete_file_leaves_nothing_to_guess() -> None:
    found = examine(tiny_classifier([None, 1, 64, 64], metadata=COMPLETE))

    assert verdicts(found, Verdict.GUESSED) == []
    assert found.refusals == [] and found.spec is not None


def test_what_a_file_leaves_out_is_named_with_the_default_and_the_fix() -> None:
    found = examine(tiny_classifier([1, 3, 64, 64], labels=None))

    guesses = {f.detail.split(":")[0]: f for f in found.findings if f.verdict is Verdict.GUESSED}
    assert {
        "no medai.labels",
        "no medai.positive_index",
        "no medai.threshold",
        "no medai.output_kind",
        "no medai.mean",
        "no medai.std",
    } <= set(guesses)
    assert "0.85" in guesses["no medai.threshold"].detail
    assert all("set_model_props" in f.fix for f in guesses.values() if "medai." in f.detail)
    layout = next(f for f in found.findings if f.detail.startswith("layout NCHW guessed"))
    assert 'medai.layout = "NCHW"' in layout.fix
    batch = next(f for f in found.findings if "batch axis fixed at 1" in f.detail)
    assert batch.verdict is Verdict.GUESSED and "dynamic" in batch.fix
    assert found.refusals == []


def test_scores_read_as_probabilities_are_flagged() -> None:
    # Weights without a Softmax: a zero input scores [0, 0], which sums to 0, not 1.
    model = onnx.load_from_string(tiny_classifier([None, 1, 64, 64]))
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    softmax.op_type = "Identity"
    softmax.ClearField("attribute")

    found = examine(model.SerializeToString())

    (flag,) = [f for f in found.findings if f.verdict is Verdict.GUESSED and "logits" in f.fix]
    assert flag.rule == "model-output"


BROKEN = {
    "ir-14": (lambda: tiny_classifier([1, 3, 64, 64], ir_version=14), "onnx", "ir_version"),
    "opset-27": (
        lambda: with_opset(tiny_classifier([1, 3, 64, 64]), MAX_OPSET + 1),
        "onnx",
        "opset",
    ),
    "not-onnx": (lambda: b"not a model", "onnx", "onnx.save"),
    "external-data": (lambda: leaking_classifier("secret.bin"), "external-data", "inside"),
    "two-inputs": (two_input_model, "model-input", "one image input"),
    "three-d": (three_d_input_model, "model-input", "4 dimensions"),
    "no-channel-axis": (
        lambda: tiny_classifier([1, 64, 64, 64], outputs=2),
        "model-input",
        "medai.layout",
    ),
    "dynamic-size": (lambda: tiny_classifier([1, 3, "h", 64]), "model-input", "fixed image"),
    "fixed-batch-4": (lambda: tiny_classifier([4, 3, 64, 64]), "model-input", "dynamic batch"),
    "bad-threshold": (
        lambda: tiny_classifier([1, 3, 64, 64], metadata={"medai.threshold": 1.5}),
        "model-metadata",
        "set_model_props",
    ),
    "mean-per-channel": (
        lambda: tiny_classifier([1, 3, 64, 64], metadata={"medai.mean": [0.5, 0.5]}),
        "model-metadata",
        "one per channel",
    ),
    "output-fits-no-labels": (
        lambda: tiny_classifier([1, 3, 64, 64], labels=["a", "b", "c"], outputs=2),
        "model-output",
        "medai.labels",
    ),
    "positive-index": (
        lambda: tiny_classifier([1, 3, 64, 64], metadata={"medai.positive_index": 2}),
        "model-metadata",
        "0..1",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_refusal_has_the_registrys_rule_and_a_fix(name: str) -> None:
    build, rule, fix = BROKEN[name]
    data = build()

    found = examine(data)

    assert found.spec is None
    assert [f.rule for f in found.refusals][:1] == [rule]
    assert fix in found.refusals[0].fix
    with pytest.raises(InvalidInput) as info:
        inspect_model(data, "m", "1")
    assert (info.value.field, info.value.rule) == ("file", rule)
    assert info.value.detail == found.refusals[0].detail


def test_refusals_of_the_file_itself_are_all_listed() -> None:
    model = onnx.load_from_string(leaking_classifier("secret.bin"))
    model.ir_version = MAX_IR_VERSION + 1
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", MAX_OPSET + 1))

    found = examine(model.SerializeToString())

    assert [f.rule for f in found.refusals] == ["onnx", "onnx", "external-data"]


@pytest.mark.parametrize(
    ("ir_version", "opset", "loads"),
    [
        (MAX_IR_VERSION, MAX_OPSET, True),
        (MAX_IR_VERSION + 1, MAX_OPSET, False),
        (MAX_IR_VERSION, MAX_OPSET + 1, False),
    ],
)
def test_the_limits_are_onnx_runtimes_own(ir_version: int, opset: int, loads: bool) -> None:
    """When ONNX Runtime is upgraded, this says whether MAX_IR_VERSION and MAX_OPSET moved."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        loaded = True
    except Exception:
        loaded = False

    assert loaded is loads
