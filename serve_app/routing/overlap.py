"""How far a shadow's regions agree with the answer's: Dice between run-length masks
(read as runs, never drawn), and whether two detections found as many boxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _set_runs(counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of set pixels of a COCO run-length mask."""
    edges = np.cumsum(np.asarray(counts, dtype=np.int64))
    return edges[0:-1:2], edges[1::2]


def dice(first: Sequence[int], second: Sequence[int]) -> float:
    """Dice coefficient of two run-length masks of one image (1.0 when both are empty)."""
    (a_starts, a_ends), (b_starts, b_ends) = _set_runs(first), _set_runs(second)
    size = int((a_ends - a_starts).sum() + (b_ends - b_starts).sum())
    if size == 0:
        return 1.0
    # NOTE: each pixel is covered by at most one run of each mask: where the running
    # count of open runs is 2, both masks hold the pixel.
    points = np.concatenate([a_starts, b_starts, a_ends, b_ends])
    steps = np.concatenate(
        [np.ones(len(a_starts) + len(b_starts)), -np.ones(len(a_ends) + len(b_ends))]
    )
    order = np.lexsort((steps, points))  # an end before a start at the same pixel
    points, depth = points[order], np.cumsum(steps[order])
    both = int(((points[1:] - points[:-1]) * (depth[:-1] == 2)).sum())
    return 2 * both / size


def mask_dice(shadow: Mapping[str, Any], answer: Mapping[str, Any]) -> float | None:
    """Mean Dice over the classes of two segmentations of one image; ``None`` when they are
    not comparable (another kind, another image size, other classes)."""
    if shadow.get("kind") != "segmentation" or answer.get("kind") != "segmentation":
        return None
    masks = {c["label"]: c["mask"] for c in answer["classes"]}
    theirs = {c["label"]: c["mask"] for c in shadow["classes"]}
    if masks.keys() != theirs.keys() or not masks:
        return None
    if any(masks[k]["size"] != theirs[k]["size"] for k in masks):
        return None
    return float(np.mean([dice(theirs[k]["counts"], masks[k]["counts"]) for k in masks]))


def same_count(shadow: Mapping[str, Any], answer: Mapping[str, Any]) -> bool | None:
    """Whether two detections of one image kept as many boxes; ``None`` unless both are
    detections."""
    if shadow.get("kind") != "detection" or answer.get("kind") != "detection":
        return None
    return len(shadow["boxes"]) == len(answer["boxes"])
