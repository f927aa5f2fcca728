"""Stack requests' tensors into one batch, and split the batch's outputs back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stack(tensors: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Concatenate request tensors on the batch axis; remember each one's rows.

    NOTE: a single tensor is already its own batch and is passed on as it is, not
    copied: the preprocessor stacks a version's images for the hop, and the model
    runner copies them again only when it combines several requests into one run.
    """
    batch = tensors[0] if len(tensors) == 1 else np.concatenate(tensors, axis=0)
    return batch, [len(t) for t in tensors]


def split(outputs: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Give each request back exactly its own rows, in order (views of ``outputs``)."""
    if len(outputs) != sum(sizes):
        raise ValueError(f"model returned {len(outputs)} rows for {sum(sizes)} inputs")
    return np.split(outputs, np.cumsum(sizes)[:-1])
