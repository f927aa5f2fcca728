"""JSON pixel lists (the ``/infer`` body) to numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serve_app.codecs.dtypes import VALUE_RANGES, WIRE_DTYPES
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.errors import InvalidInput


def pixels_from_list(
    data: Sequence[float], width: int, height: int, channels: int, dtype: str
) -> DecodedImage:
    """Turn a flat, row-major (height, width, channels) pixel list into an image.

    Raises ``InvalidInput`` naming the field and rule: ``data`` of the wrong
    length, non-finite values, values outside the dtype's range, or
    fractional values for an integer dtype.
    """
    expected = width * height * channels
    if len(data) != expected:
        raise InvalidInput(
            f"data has {len(data)} values; width*height*channels is {expected}",
            field="data",
            rule="length",
        )
    values = np.asarray(data, dtype=np.float64)
    if not np.isfinite(values).all():
        raise InvalidInput("data contains NaN or Infinity", field="data", rule="finite")
    target = WIRE_DTYPES[dtype]
    low, high = VALUE_RANGES[target]
    if values.min() < low or values.max() > high:
        raise InvalidInput(
            f"{dtype} pixel values must lie in {low:g}..{high:g}", field="data", rule="range"
        )
    if target.kind == "u" and not np.array_equal(values, np.round(values)):
        raise InvalidInput(f"{dtype} pixel values must be integers", field="data", rule="integer")
    pixels = values.astype(target).reshape(height, width, channels)
    return DecodedImage(pixels=pixels, format=ImageFormat.PIXELS)
