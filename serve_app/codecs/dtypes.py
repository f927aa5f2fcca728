"""The one dtype table: wire names, value ranges, and ONNX tensor types."""

from __future__ import annotations

import numpy as np

WIRE_DTYPES: dict[str, np.dtype] = {
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
"""Pixel dtypes a client may declare for a JSON pixel list."""

VALUE_RANGES: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.uint8): (0.0, 255.0),
    np.dtype(np.uint16): (0.0, 65535.0),
    np.dtype(np.float32): (0.0, 1.0),
    np.dtype(np.float64): (0.0, 1.0),
}
"""Accepted pixel values per dtype; integers use their full range, floats 0..1."""

ONNX_TENSOR_TYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint16)": np.dtype(np.uint16),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
}
"""ONNX Runtime's type strings to numpy."""


def unit_range(pixels: np.ndarray) -> np.ndarray:
    """Scale pixels to float32 0..1 according to their dtype's value range."""
    low, high = VALUE_RANGES.get(pixels.dtype, (0.0, 1.0))
    scaled = pixels.astype(np.float32, copy=False)
    if (low, high) != (0.0, 1.0):
        scaled = (scaled - low) / (high - low)
    return scaled
