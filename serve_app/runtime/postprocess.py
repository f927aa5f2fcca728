"""Turn a model's output row into a clinical answer: confidence, label, threshold."""

from __future__ import annotations

import numpy as np

from serve_app.catalog.spec import ModelMetadata
from serve_app.errors import ModelOutputInvalid
from serve_app.records.inference import Interpretation

INDETERMINATE = "indeterminate"


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def interpret(row: np.ndarray, meta: ModelMetadata) -> Interpretation:
    """Apply the model's decision rule.

    With a positive class, the confidence is that class's probability and the
    answer is positive only when it exceeds the threshold; otherwise the
    likeliest other label. Without one, the likeliest label wins when its
    probability exceeds the threshold, else ``indeterminate``.

    Raises ``ModelOutputInvalid`` (field ``outputs``, rule ``finite``) when the row
    or its probabilities hold NaN or infinity: no such answer reaches a response or
    the audit trail.
    """
    row = np.asarray(row, dtype=np.float64).reshape(-1)
    with np.errstate(all="ignore"):
        probs = softmax(row) if meta.output_kind == "logits" else row
    if not (np.isfinite(row).all() and np.isfinite(probs).all()):
        raise ModelOutputInvalid(
            "the model's output for this image is not finite (NaN or infinity)",
            field="outputs",
            rule="finite",
        )
    if meta.positive_index is not None:
        confidence = float(probs[meta.positive_index])
        others = probs.copy()
        others[meta.positive_index] = -np.inf
        winner = meta.positive_index if confidence > meta.threshold else int(others.argmax())
        prediction = meta.labels[winner]
        positive: bool | None = winner == meta.positive_index
    else:
        confidence = float(probs.max())
        prediction = (
            meta.labels[int(probs.argmax())] if confidence > meta.threshold else INDETERMINATE
        )
        positive = None
    return Interpretation(
        outputs=row.tolist(),
        confidence=confidence,
        prediction=prediction,
        threshold=meta.threshold,
        positive=positive,
    )
