"""Detection: candidate boxes with class scores read into the boxes kept (score threshold,
then non-maximum suppression per label), mapped back to the source image."""

from __future__ import annotations

from typing import Any

import numpy as np

from serve_app.catalog.spec import ModelSpec
from serve_app.errors import ModelOutputInvalid
from serve_app.records.inference import Interpretation
from serve_app.runtime.kinds.geometry import SourceGeometry

NOTHING_FOUND = "none"
"""The prediction when no box scores over the threshold."""
MAX_CANDIDATES = 100_000
"""Most candidate boxes a detector may put out per image (YOLOv8 at 640 px: 8400)."""
MAX_NMS_CANDIDATES = 10_000
"""Most boxes over the threshold that suppression considers, the best first."""
BOX_DECIMALS = 2


def output_problem(shape: tuple[int, ...], spec: ModelSpec) -> str | None:
    """Why one image's output of ``shape`` (without the batch axis) cannot be detections for
    ``spec``; ``None`` when it can."""
    width = 4 + len(spec.metadata.labels)
    if len(shape) != 2 or shape[1] != width:
        return (
            f"a detection output must be (batch, boxes, {width}): x0, y0, x1, y1, then one "
            f"score per label; not (batch, {', '.join(map(str, shape))})"
        )
    if shape[0] > MAX_CANDIDATES:
        return f"it puts out {shape[0]} boxes per image; at most {MAX_CANDIDATES} are read"
    return None


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / (area + areas - inter))


def suppress(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float, most: int
) -> list[int]:
    """Greedy non-maximum suppression per label: indexes of the boxes kept, best first (ties
    by index, so the same output always keeps the same boxes). Only the best
    ``MAX_NMS_CANDIDATES`` are considered, which bounds the work."""
    order = np.lexsort((np.arange(len(scores)), -scores))[:MAX_NMS_CANDIDATES]
    kept: list[int] = []
    by_label: dict[int, list[int]] = {}
    for i in order.tolist():
        same = by_label.setdefault(int(labels[i]), [])
        if same and (_iou(boxes[i], boxes[same]) > iou).any():
            continue
        kept.append(i)
        same.append(i)
        if len(kept) == most:
            break
    return kept


def interpret(row: np.ndarray, spec: ModelSpec, geometry: SourceGeometry) -> Interpretation:
    """The boxes scoring over the threshold that survive suppression, in source pixels (and
    mm when the pixel spacing is known), best first.

    The prediction is the best box's label (``none`` without one), the confidence its
    score; ``outputs`` each label's best kept score. Raises ``ModelOutputInvalid`` for an
    output of another shape or with NaN or infinite values.
    """
    meta = spec.metadata
    row = np.asarray(row)
    problem = output_problem(row.shape, spec)
    if problem is not None:
        raise ModelOutputInvalid(f"the model's output {problem}", field="outputs", rule="shape")
    row = row.astype(np.float64)
    scores_by_label = row[:, 4:]
    if meta.output_kind == "logits":
        with np.errstate(all="ignore"):
            scores_by_label = 1.0 / (1.0 + np.exp(-scores_by_label))
    if not (np.isfinite(row).all() and np.isfinite(scores_by_label).all()):
        raise ModelOutputInvalid(
            "the model's output for this image is not finite (NaN or infinity)",
            field="outputs",
            rule="finite",
        )
    labels = scores_by_label.argmax(axis=1)
    scores = scores_by_label.max(axis=1)
    # NOTE: clipped to the input the model saw: a box never reaches past the image.
    limits = np.array([spec.width, spec.height, spec.width, spec.height], dtype=np.float64)
    boxes = np.clip(row[:, :4], 0, limits)
    candidates = np.flatnonzero(
        (scores > meta.threshold) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    )
    picked = suppress(
        boxes[candidates],
        scores[candidates],
        labels[candidates],
        meta.nms_iou,
        meta.max_detections,
    )
    kept = candidates[picked]
    scale = np.array([geometry.width / spec.width, geometry.height / spec.height] * 2)
    spacing = geometry.pixel_spacing_mm
    mm = None if spacing is None else np.array([spacing[1], spacing[0]] * 2)
    found: list[dict[str, Any]] = []
    for i in kept:
        box = boxes[i] * scale
        found.append(
            {
                "label": meta.labels[labels[i]],
                "score": round(float(scores[i]), 6),
                "box": [round(float(v), BOX_DECIMALS) for v in box],
                "box_mm": None if mm is None else [round(float(v), 3) for v in box * mm],
            }
        )
    best = [0.0] * len(meta.labels)
    for i in kept:
        best[labels[i]] = max(best[labels[i]], round(float(scores[i]), 6))
    top = found[0] if found else None
    return Interpretation(
        outputs=best,
        confidence=0.0 if top is None else top["score"],
        prediction=NOTHING_FOUND if top is None else top["label"],
        threshold=meta.threshold,
        positive=top is not None,
        findings={"kind": "detection", **geometry.to_json(), "boxes": found},
    )
