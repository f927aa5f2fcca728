from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from serve_app.catalog.spec import ModelMetadata
from serve_app.errors import ModelOutputInvalid
from serve_app.runtime.postprocess import INDETERMINATE, interpret, softmax

BINARY = ModelMetadata(labels=["no_finding", "pneumonia"], positive_index=1, threshold=0.7)
THREE = ModelMetadata(labels=["benign", "melanoma", "nevus"], threshold=0.6)


def test_softmax() -> None:
    probs = softmax(np.array([1.0, 2.0, 3.0]))

    expected = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(probs, expected)
    assert probs.sum() == pytest.approx(1.0)


def test_softmax_is_stable_for_large_logits() -> None:
    probs = softmax(np.array([1000.0, 1000.0]))

    np.testing.assert_allclose(probs, [0.5, 0.5])


def test_positive_above_threshold() -> None:
    result = interpret(np.array([0.2, 0.8]), BINARY)

    assert result.prediction == "pneumonia"
    assert result.confidence == pytest.approx(0.8)
    assert result.threshold == 0.7
    assert result.positive is True


def test_positive_below_threshold_gives_the_other_label() -> None:
    result = interpret(np.array([0.4, 0.6]), BINARY)

    assert result.prediction == "no_finding"
    assert result.confidence == pytest.approx(0.6)  # still the positive class's probability
    assert result.positive is False


def test_positive_equal_to_threshold_is_not_positive() -> None:
    meta = ModelMetadata(labels=["no_finding", "pneumonia"], positive_index=1, threshold=0.75)

    result = interpret(np.array([0.25, 0.75]), meta)  # both exact in binary floating point

    assert result.confidence == 0.75
    assert result.prediction == "no_finding"


def test_positive_below_threshold_picks_the_likeliest_other_label() -> None:
    meta = ModelMetadata(labels=["a", "positive", "b", "c"], positive_index=1, threshold=0.9)

    result = interpret(np.array([0.1, 0.5, 0.3, 0.1]), meta)

    assert result.prediction == "b"


def test_positive_class_need_not_be_the_argmax() -> None:
    meta = ModelMetadata(labels=["a", "positive", "b"], positive_index=1, threshold=0.3)

    result = interpret(np.array([0.6, 0.35, 0.05]), meta)

    assert result.prediction == "positive"


def test_logits_go_through_softmax() -> None:
    meta = BINARY.model_copy(update={"output_kind": "logits"})
    logits = np.array([0.0, 2.0])

    result = interpret(logits, meta)

    assert result.confidence == pytest.approx(math.exp(2) / (1 + math.exp(2)))
    assert result.prediction == "pneumonia"  # 0.881 > 0.7
    assert result.outputs == [0.0, 2.0]  # the raw logits, not the probabilities


def test_logits_below_threshold_after_softmax() -> None:
    meta = BINARY.model_copy(update={"output_kind": "logits"})

    result = interpret(np.array([0.0, 0.5]), meta)  # softmax gives 0.622 for the positive class

    assert result.prediction == "no_finding"


def test_multiclass_likeliest_label_above_threshold() -> None:
    result = interpret(np.array([0.1, 0.7, 0.2]), THREE)

    assert result.prediction == "melanoma"
    assert result.confidence == pytest.approx(0.7)
    assert result.positive is None  # no positive class: no positive rate


@pytest.mark.parametrize(
    ("row", "threshold"), [([0.3, 0.5, 0.2], 0.6), ([0.25, 0.5, 0.25], 0.5)], ids=["below", "equal"]
)
def test_multiclass_indeterminate_unless_threshold_exceeded(
    row: list[float], threshold: float
) -> None:
    meta = THREE.model_copy(update={"threshold": threshold})

    result = interpret(np.array(row), meta)

    assert result.prediction == INDETERMINATE
    assert result.confidence == 0.5


def test_outputs_are_the_raw_row_as_floats() -> None:
    row = np.array([[0.25, 0.75]], dtype=np.float32)  # a (1, n) row is flattened

    result = interpret(row, BINARY)

    assert result.outputs == [0.25, 0.75]
    assert all(type(v) is float for v in result.outputs)
    assert type(result.confidence) is float


def test_single_output_models_are_refused_they_cannot_say_no() -> None:
    with pytest.raises(ValidationError, match="labels"):
        ModelMetadata(labels=["pneumonia"], positive_index=0, threshold=0.5)


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        ([np.nan, 0.2], "probabilities"),
        ([np.inf, 0.2], "probabilities"),
        ([np.inf, 1.0], "logits"),  # softmax of an infinite logit is NaN
        ([-np.inf, -np.inf], "logits"),
    ],
)
def test_non_finite_outputs_are_refused(row: list[float], kind: str) -> None:
    meta = ModelMetadata(labels=["a", "b"], output_kind=kind)

    with pytest.raises(ModelOutputInvalid) as raised:
        interpret(np.array(row, dtype=np.float32), meta)

    assert (raised.value.field, raised.value.rule) == ("outputs", "finite")
