"""Pure helpers behind ``@serve.batch``: stack requests, split results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stack(tensors: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Concatenate request tensors on the batch axis; remember each one's rows."""
    return np.concatenate(tensors, axis=0), [len(t) for t in tensors]


def split(outputs: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Give each request back exactly its own rows, in order."""
    if len(outputs) != sum(sizes):
        raise ValueError(f"model returned {len(outputs)} rows for {sum(sizes)} inputs")
    return np.split(outputs, np.cumsum(sizes)[:-1])
