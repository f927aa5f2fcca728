from __future__ import annotations

import numpy as np
import pytest

from serve_app.catalog.spec import Layout, ModelMetadata, ModelSpec
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.preprocessing import LUMA, match_channels, normalize, prepare, resize
from tests.unit.onnx_builders import make_spec


def spec(
    channels: int = 3,
    height: int = 64,
    width: int = 64,
    layout: Layout = Layout.NCHW,
    dtype: str = "float32",
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> ModelSpec:
    dims = [channels, height, width] if layout is Layout.NCHW else [height, width, channels]
    return make_spec([None, *dims], layout, dtype, ModelMetadata(mean=mean, std=std))


def image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, format=ImageFormat.PIXELS)


def rgb(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_nchw_output_shape() -> None:
    tensor = prepare(image(rgb(64, 48)), spec(channels=3, height=32, width=40))

    assert tensor.shape == (1, 3, 32, 40)
    assert tensor.flags.c_contiguous


def test_nhwc_output_shape() -> None:
    tensor = prepare(image(rgb(64, 48)), spec(3, height=32, width=40, layout=Layout.NHWC))

    assert tensor.shape == (1, 32, 40, 3)


def test_nchw_puts_each_channel_in_its_plane() -> None:
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:, :, 0], pixels[:, :, 1], pixels[:, :, 2] = 0, 51, 255

    tensor = prepare(image(pixels), spec(3))

    np.testing.assert_allclose(tensor[0, :, 10, 10], [0.0, 0.2, 1.0], rtol=1e-6)


def test_nhwc_keeps_channels_last() -> None:
    pixels = rgb()

    tensor = prepare(image(pixels), spec(3, layout=Layout.NHWC))

    np.testing.assert_allclose(tensor[0], pixels / 255.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_dtype_follows_the_spec(dtype: str) -> None:
    tensor = prepare(image(rgb()), spec(dtype=dtype))

    assert tensor.dtype == np.dtype(dtype)


def test_uint8_model_gets_uint8_pixel_values() -> None:
    pixels = np.full((64, 64, 3), 200, dtype=np.uint8)

    tensor = prepare(image(pixels), spec(dtype="uint8"))

    assert tensor.dtype == np.uint8
    assert (tensor == 200).all()


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        (np.full((64, 64, 1), 255, dtype=np.uint8), 1.0),
        (np.full((64, 64, 1), 65535, dtype=np.uint16), 1.0),
        (np.full((64, 64, 1), 51, dtype=np.uint8), 0.2),
        (np.full((64, 64, 1), 0.25, dtype=np.float32), 0.25),
    ],
    ids=["uint8-max", "uint16-max", "uint8-51", "float"],
)
def test_pixels_go_to_unit_range_by_dtype(pixels: np.ndarray, expected: float) -> None:
    tensor = prepare(image(pixels), spec(channels=1))

    np.testing.assert_allclose(tensor, expected, rtol=1e-6)


def test_mean_and_std_are_applied_after_scaling() -> None:
    pixels = np.full((64, 64, 1), 255, dtype=np.uint8)  # 1.0 after scaling

    tensor = prepare(image(pixels), spec(channels=1, mean=[0.5], std=[0.25]))

    np.testing.assert_allclose(tensor, (1.0 - 0.5) / 0.25, rtol=1e-6)


def test_mean_and_std_are_per_channel() -> None:
    pixels = np.full((64, 64, 3), 51, dtype=np.uint8)  # 0.2 in every channel
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 0.1]

    tensor = prepare(image(pixels), spec(3, mean=mean, std=std))

    for channel in range(3):
        expected = (0.2 - mean[channel]) / std[channel]
        np.testing.assert_allclose(tensor[0, channel], expected, rtol=1e-5, atol=1e-6)


def test_normalize_without_mean_or_std_is_identity() -> None:
    pixels = np.random.default_rng(1).random((4, 4, 3), dtype=np.float32)

    np.testing.assert_array_equal(normalize(pixels, None, None), pixels)


def test_grey_is_replicated_to_three_channels() -> None:
    grey = np.random.default_rng(2).integers(0, 256, (64, 64, 1), dtype=np.uint8)

    tensor = prepare(image(grey), spec(channels=3))

    for channel in range(3):
        np.testing.assert_allclose(tensor[0, channel], grey[:, :, 0] / 255.0, rtol=1e-6)


def test_rgb_to_grey_uses_bt601_luma() -> None:
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:32, :, 0] = 255  # red top half
    pixels[32:, :, 1] = 255  # green bottom half

    tensor = prepare(image(pixels), spec(channels=1))

    assert tensor.shape == (1, 1, 64, 64)
    np.testing.assert_allclose(tensor[0, 0, :32], 0.299, rtol=1e-6)
    np.testing.assert_allclose(tensor[0, 0, 32:], 0.587, rtol=1e-6)


def test_luma_weights_sum_to_one() -> None:
    assert LUMA.tolist() == pytest.approx([0.299, 0.587, 0.114])
    white = np.ones((2, 2, 3), dtype=np.float32)
    np.testing.assert_allclose(match_channels(white, 1), 1.0, rtol=1e-6)


def test_resize_to_the_model_size_keeps_a_constant_image_constant() -> None:
    pixels = np.full((100, 80, 1), 0.4, dtype=np.float32)  # 100 high, 80 wide

    tensor = prepare(image(pixels), spec(channels=1, height=64, width=64))

    assert tensor.shape == (1, 1, 64, 64)
    np.testing.assert_allclose(tensor, 0.4, rtol=1e-5)


def test_resize_keeps_a_horizontal_gradient_monotonic() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 80, dtype=np.float32), (100, 1))[:, :, np.newaxis]

    tensor = prepare(image(ramp), spec(channels=1, height=64, width=64))

    rows = tensor[0, 0]
    assert (np.diff(rows, axis=1) > 0).all()
    np.testing.assert_allclose(rows, rows[:1].repeat(64, axis=0), atol=1e-6)  # rows stay equal
    assert rows[0, 0] < 0.05 and rows[0, -1] > 0.95


def test_resize_upscales() -> None:
    pixels = np.random.default_rng(4).random((16, 16, 3), dtype=np.float32)

    assert resize(pixels, 64, 48).shape == (64, 48, 3)


def test_no_resize_when_sizes_match() -> None:
    pixels = np.random.default_rng(5).random((64, 64, 3)).astype(np.float32)

    tensor = prepare(image(pixels), spec(3, layout=Layout.NHWC))

    np.testing.assert_array_equal(tensor[0], pixels)
    assert resize(pixels, 64, 64) is pixels
