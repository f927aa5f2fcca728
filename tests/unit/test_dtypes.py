from __future__ import annotations

import numpy as np
import pytest

from serve_app.codecs.dtypes import (
    ONNX_TENSOR_TYPES,
    VALUE_RANGES,
    WIRE_DTYPES,
    unit_range,
)


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        ("uint8", [0, 51, 255], [0.0, 0.2, 1.0]),
        ("uint16", [0, 13107, 65535], [0.0, 0.2, 1.0]),
        ("float32", [0.0, 0.2, 1.0], [0.0, 0.2, 1.0]),
        ("float64", [0.0, 0.2, 1.0], [0.0, 0.2, 1.0]),
    ],
)
def test_unit_range_scales_by_dtype(dtype: str, values: list[float], expected: list[float]) -> None:
    scaled = unit_range(np.array(values, dtype=dtype))

    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, expected, rtol=1e-6)


def test_unit_range_keeps_the_shape() -> None:
    pixels = np.full((5, 4, 3), 255, dtype=np.uint8)

    scaled = unit_range(pixels)

    assert scaled.shape == (5, 4, 3)
    assert (scaled == 1.0).all()


def test_every_wire_dtype_has_a_value_range() -> None:
    assert set(WIRE_DTYPES.values()) <= set(VALUE_RANGES)


def test_onnx_float_is_float32() -> None:
    assert ONNX_TENSOR_TYPES["tensor(float)"] == np.float32
