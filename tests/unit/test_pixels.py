from __future__ import annotations

import math

import numpy as np
import pytest

from serve_app.codecs.pixels import pixels_from_list
from serve_app.codecs.types import ImageFormat
from serve_app.errors import InvalidInput


def test_length_must_match_width_height_channels() -> None:
    with pytest.raises(InvalidInput) as info:
        pixels_from_list([0.0] * 11, width=4, height=3, channels=1, dtype="float32")

    assert (info.value.field, info.value.rule) == ("data", "length")
    assert "11" in info.value.detail and "12" in info.value.detail


def test_length_counts_channels() -> None:
    with pytest.raises(InvalidInput) as info:
        pixels_from_list([0.0] * 12, width=4, height=3, channels=3, dtype="float32")

    assert info.value.rule == "length"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_non_finite_values_are_rejected(bad: float, dtype: str) -> None:
    with pytest.raises(InvalidInput) as info:
        pixels_from_list([0.0, bad, 0.0, 0.0], width=2, height=2, channels=1, dtype=dtype)

    assert (info.value.field, info.value.rule) == ("data", "finite")


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [("uint8", 0, 255), ("uint16", 0, 65535), ("float32", 0.0, 1.0), ("float64", 0.0, 1.0)],
)
def test_range_boundaries_are_accepted(dtype: str, low: float, high: float) -> None:
    image = pixels_from_list([low, high], width=2, height=1, channels=1, dtype=dtype)

    assert image.pixels.ravel().tolist() == [low, high]


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        ("uint8", -1),
        ("uint8", 256),
        ("uint16", -1),
        ("uint16", 65536),
        ("float32", -0.0001),
        ("float32", 1.0001),
        ("float64", -0.0001),
        ("float64", 1.0001),
    ],
)
def test_values_outside_the_dtype_range_are_rejected(dtype: str, value: float) -> None:
    with pytest.raises(InvalidInput) as info:
        pixels_from_list([0, value], width=2, height=1, channels=1, dtype=dtype)

    assert (info.value.field, info.value.rule) == ("data", "range")


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("value", [0.5, 1.5, 254.9])
def test_integer_dtypes_reject_fractional_values(dtype: str, value: float) -> None:
    with pytest.raises(InvalidInput) as info:
        pixels_from_list([0, value], width=2, height=1, channels=1, dtype=dtype)

    assert (info.value.field, info.value.rule) == ("data", "integer")


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_integer_dtypes_accept_whole_floats(dtype: str) -> None:
    image = pixels_from_list([3.0, 200.0], width=2, height=1, channels=1, dtype=dtype)

    assert image.pixels.ravel().tolist() == [3, 200]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_result_has_the_declared_dtype(dtype: str) -> None:
    image = pixels_from_list([0, 1, 1, 0], width=2, height=2, channels=1, dtype=dtype)

    assert image.pixels.dtype == np.dtype(dtype)
    assert image.format is ImageFormat.PIXELS


def test_grey_list_is_row_major() -> None:
    image = pixels_from_list(list(range(6)), width=3, height=2, channels=1, dtype="uint8")

    assert image.pixels.shape == (2, 3, 1)
    assert (image.height, image.width, image.channels) == (2, 3, 1)
    np.testing.assert_array_equal(image.pixels[:, :, 0], [[0, 1, 2], [3, 4, 5]])


def test_rgb_list_is_row_major_with_channels_last() -> None:
    data = list(range(18))  # 2 rows x 3 columns x 3 channels

    image = pixels_from_list(data, width=3, height=2, channels=3, dtype="uint8")

    assert image.pixels.shape == (2, 3, 3)
    assert image.pixels[0, 0].tolist() == [0, 1, 2]
    assert image.pixels[0, 2].tolist() == [6, 7, 8]
    assert image.pixels[1, 0].tolist() == [9, 10, 11]
    assert image.pixels[1, 2].tolist() == [15, 16, 17]


def test_uint16_values_above_255_survive() -> None:
    image = pixels_from_list([65535, 1000], width=1, height=2, channels=1, dtype="uint16")

    assert image.pixels[:, 0, 0].tolist() == [65535, 1000]
