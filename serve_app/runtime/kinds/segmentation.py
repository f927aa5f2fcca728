"""Segmentation: per-pixel class scores, or a mask of class indexes, read into one mask per
class on the source image, with its pixel count, area and run-length encoding."""

from __future__ import annotations

from typing import Any

import numpy as np

from serve_app.catalog.spec import ModelSpec
from serve_app.errors import ModelOutputInvalid
from serve_app.records.inference import Interpretation
from serve_app.runtime.kinds import rle
from serve_app.runtime.kinds.geometry import SourceGeometry

NOTHING_FOUND = "none"
"""The prediction when no class has a pixel over the threshold."""
MAX_MASK_RUNS = 1 << 20
"""Most runs all of an answer's masks may take together (about 8 MB of JSON): a mask as
fragmented as noise is refused rather than stored and sent."""


def output_problem(shape: tuple[int, ...], integral: bool, spec: ModelSpec) -> str | None:
    """Why one image's output of ``shape`` (without the batch axis) cannot be a segmentation
    for ``spec``; ``None`` when it can."""
    classes = len(spec.metadata.labels)
    if integral:
        if len(shape) == 3 and shape[0] == 1:
            shape = shape[1:]
        if len(shape) != 2:
            return f"a mask output must be (batch, height, width) class indexes, not {shape}"
    elif len(shape) != 3 or shape[0] != classes:
        return (
            f"a score output must be (batch, classes, height, width) with one class per "
            f"label ({classes}), not (batch, {', '.join(map(str, shape))})"
        )
    height, width = shape[-2:]
    if not (0 < height <= spec.height and 0 < width <= spec.width):
        return (
            f"its masks are {height}x{width}: not within the input's "
            f"{spec.height}x{spec.width} (a mask finer than the input says nothing more)"
        )
    return None


def _probabilities(scores: np.ndarray, output_kind: str) -> np.ndarray:
    scores = scores.astype(np.float64)
    if output_kind != "logits":
        return scores
    with np.errstate(all="ignore"):
        if len(scores) == 1:  # one class: its own sigmoid
            return 1.0 / (1.0 + np.exp(-scores))
        e = np.exp(scores - scores.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)


def _class_maps(row: np.ndarray, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Each class's mask and its pixels' scores, at the model's output size."""
    meta = spec.metadata
    problem = output_problem(row.shape, row.dtype.kind in "biu", spec)
    if problem is not None:
        raise ModelOutputInvalid(f"the model's output {problem}", field="outputs", rule="shape")
    if row.dtype.kind in "biu":
        indexes = row.reshape(row.shape[-2:])
        if indexes.size and not (indexes.min() >= 0 and indexes.max() < len(meta.labels)):
            raise ModelOutputInvalid(
                "the model's mask holds a class index that is not a label",
                field="outputs",
                rule="label-index",
            )
        masks = np.stack([indexes == c for c in range(len(meta.labels))])
        return masks, masks.astype(np.float64)
    probabilities = _probabilities(row, meta.output_kind)
    if not (np.isfinite(row).all() and np.isfinite(probabilities).all()):
        raise ModelOutputInvalid(
            "the model's output for this image is not finite (NaN or infinity)",
            field="outputs",
            rule="finite",
        )
    return probabilities > meta.threshold, probabilities


def to_source(mask: np.ndarray, geometry: SourceGeometry) -> np.ndarray:
    """A mask at the model's size stretched back onto the source image (nearest pixel: the
    inverse of preprocessing's resize, which does not keep the aspect ratio)."""
    height, width = mask.shape
    rows = ((np.arange(geometry.height) + 0.5) * height / geometry.height).astype(np.intp)
    cols = ((np.arange(geometry.width) + 0.5) * width / geometry.width).astype(np.intp)
    return mask[np.ix_(np.minimum(rows, height - 1), np.minimum(cols, width - 1))]


def interpret(row: np.ndarray, spec: ModelSpec, geometry: SourceGeometry) -> Interpretation:
    """One mask per class but the background, on the source image.

    The prediction is the class covering most pixels (``none`` when no pixel is over the
    threshold); the confidence its highest pixel score; ``outputs`` each class's highest
    pixel score. Raises ``ModelOutputInvalid`` for an output of another shape, NaN scores,
    class indexes outside the labels, or masks too fragmented to send.
    """
    meta = spec.metadata
    masks, probabilities = _class_maps(np.asarray(row), spec)
    peaks = probabilities.reshape(len(probabilities), -1).max(axis=1)
    spacing = geometry.pixel_spacing_mm
    pixel_mm2 = None if spacing is None else spacing[0] * spacing[1]
    classes: list[dict[str, Any]] = []
    runs = 0
    for c in (c for c in range(len(meta.labels)) if c != meta.background_index):
        # NOTE: one class at a time: a source-sized mask per class at once could hold
        # 32 x 2048 x 2048 booleans.
        source = to_source(masks[c], geometry)
        runs += rle.runs(source)
        if runs > MAX_MASK_RUNS:
            raise ModelOutputInvalid(
                f"the model's masks for this image take more than {MAX_MASK_RUNS} runs",
                field="outputs",
                rule="mask-size",
            )
        count = int(np.count_nonzero(source))
        classes.append(
            {
                "label": meta.labels[c],
                "pixel_count": count,
                "area_mm2": None if pixel_mm2 is None else round(count * pixel_mm2, 3),
                "max_score": round(float(peaks[c]), 6),
                "mask": rle.encode(source),
            }
        )
    found = [entry for entry in classes if entry["pixel_count"]]
    top = max(found, key=lambda e: e["pixel_count"], default=None)
    scores = [e["max_score"] for e in ([top] if top else classes)]
    return Interpretation(
        outputs=[round(float(p), 6) for p in peaks],
        confidence=float(max(scores, default=0.0)),
        prediction=NOTHING_FOUND if top is None else top["label"],
        threshold=meta.threshold,
        positive=top is not None,
        findings={"kind": "segmentation", **geometry.to_json(), "classes": classes},
    )
