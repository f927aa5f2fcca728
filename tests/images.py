"""Test images: deterministic pixels and their encodings."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image


def pixels(
    seed: int, height: int = 256, width: int = 256, channels: int = 1, dtype: str = "uint8"
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.startswith("float"):
        return rng.random((height, width, channels)).astype(dtype)
    high = 256 if dtype == "uint8" else 65536
    return rng.integers(0, high, (height, width, channels)).astype(dtype)


def infer_body(image: np.ndarray, **extra: Any) -> dict[str, Any]:
    h, w, c = image.shape
    return {
        "data": image.ravel().tolist(),
        "width": w,
        "height": h,
        "channels": c,
        "dtype": str(image.dtype),
        **extra,
    }


def encode(image: np.ndarray, fmt: str, **options: Any) -> bytes:
    squeezed = image[:, :, 0] if image.shape[2] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(squeezed).save(buf, fmt, **options)
    return buf.getvalue()
