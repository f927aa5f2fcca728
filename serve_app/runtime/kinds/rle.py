"""Masks as COCO's uncompressed run-length encoding: ``{"size": [height, width],
"counts": [...]}``, runs over the mask read column by column (Fortran order), the first
run of zeros (0 when the first pixel is set). ``pycocotools.mask.frPyObjects`` reads it."""

from __future__ import annotations

from typing import Any

import numpy as np


def encode(mask: np.ndarray) -> dict[str, Any]:
    """The run-length encoding of a non-empty 2-D boolean mask."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
    if flat[0]:
        counts.insert(0, 0)  # the first run is always of zeros
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def decode(rle: dict[str, Any]) -> np.ndarray:
    """The boolean mask of a run-length encoding made by ``encode``."""
    height, width = rle["size"]
    values = np.arange(len(rle["counts"])) % 2 == 1
    flat = np.repeat(values, rle["counts"])
    return flat.reshape((height, width), order="F")


def runs(mask: np.ndarray) -> int:
    """How many runs ``encode`` would write: bounded before a mask is encoded."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    return int(np.count_nonzero(flat[1:] != flat[:-1])) + 1 + int(flat[0])
