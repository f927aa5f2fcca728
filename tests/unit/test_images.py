from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from serve_app.codecs.images import decode_image
from serve_app.codecs.sniff import PNG_MAGIC
from serve_app.codecs.types import ImageFormat
from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings

LIMITS = LimitsSettings()
RNG = np.random.default_rng(7)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def smooth(height: int, width: int, channels: int) -> np.ndarray:
    """Gentle gradients: JPEG reproduces them closely."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 2 + y + 40 * c) % 200 + 20 for c in range(channels)]
    return np.stack(planes, axis=2).astype(np.uint8)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed 8-bit grey PNG header declaring any size, with a few bytes of pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        PNG_MAGIC
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def test_grey_png_round_trips_exactly() -> None:
    pixels = RNG.integers(0, 256, (70, 90), dtype=np.uint8)

    decoded = decode_image(encode(Image.fromarray(pixels), "PNG"), ImageFormat.PNG, LIMITS)

    assert decoded.format is ImageFormat.PNG
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape == (70, 90, 1)
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], pixels)


def test_sixteen_bit_grey_png_keeps_uint16_values() -> None:
    pixels = RNG.integers(0, 65536, (66, 80), dtype=np.uint16)
    pixels[0, 0], pixels[0, 1] = 0, 65535
    image = Image.fromarray(pixels)
    assert image.mode == "I;16"

    decoded = decode_image(encode(image, "PNG"), ImageFormat.PNG, LIMITS)

    assert decoded.pixels.dtype == np.uint16
    assert decoded.pixels.shape == (66, 80, 1)
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], pixels)


def test_rgb_png_round_trips_exactly() -> None:
    pixels = RNG.integers(0, 256, (64, 72, 3), dtype=np.uint8)

    decoded = decode_image(encode(Image.fromarray(pixels), "PNG"), ImageFormat.PNG, LIMITS)

    assert decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(decoded.pixels, pixels)


def test_rgba_png_drops_alpha() -> None:
    rgba = RNG.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    rgba[:, :, 3] = 255  # opaque, so dropping alpha changes no colour

    decoded = decode_image(encode(Image.fromarray(rgba), "PNG"), ImageFormat.PNG, LIMITS)

    assert decoded.pixels.shape == (64, 64, 3)
    np.testing.assert_array_equal(decoded.pixels, rgba[:, :, :3])


def test_grey_alpha_png_is_grey() -> None:
    grey = RNG.integers(0, 256, (64, 64), dtype=np.uint8)
    image = Image.merge("LA", [Image.fromarray(grey), Image.new("L", (64, 64), 255)])

    decoded = decode_image(encode(image, "PNG"), ImageFormat.PNG, LIMITS)

    assert decoded.pixels.shape == (64, 64, 1)
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], grey)


def test_palette_png_becomes_rgb() -> None:
    colours = np.array([[255, 0, 0], [0, 128, 255], [10, 200, 30]], dtype=np.uint8)
    indices = RNG.integers(0, 3, (64, 80))
    palette = Image.fromarray(indices.astype(np.uint8)).convert("P")
    palette.putpalette(colours.ravel().tolist())
    assert palette.mode == "P"

    decoded = decode_image(encode(palette, "PNG"), ImageFormat.PNG, LIMITS)

    assert decoded.pixels.shape == (64, 80, 3)
    np.testing.assert_array_equal(decoded.pixels, colours[indices])


def test_one_bit_png_is_grey_0_or_255() -> None:
    bits = RNG.integers(0, 2, (64, 64)).astype(bool)
    image = Image.fromarray(bits)
    assert image.mode == "1"

    decoded = decode_image(encode(image, "PNG"), ImageFormat.PNG, LIMITS)

    assert decoded.pixels.shape == (64, 64, 1)
    assert decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], np.where(bits, 255, 0))


def test_grey_jpeg_is_one_channel_and_close() -> None:
    pixels = smooth(64, 96, 1)[:, :, 0]

    decoded = decode_image(
        encode(Image.fromarray(pixels), "JPEG", quality=95), ImageFormat.JPEG, LIMITS
    )

    assert decoded.format is ImageFormat.JPEG
    assert decoded.pixels.shape == (64, 96, 1)
    assert decoded.pixels.dtype == np.uint8
    assert np.abs(decoded.pixels[:, :, 0].astype(int) - pixels).mean() < 2


def test_rgb_jpeg_is_three_channels_and_close() -> None:
    pixels = smooth(80, 64, 3)

    decoded = decode_image(
        encode(Image.fromarray(pixels), "JPEG", quality=95), ImageFormat.JPEG, LIMITS
    )

    assert decoded.pixels.shape == (80, 64, 3)
    assert np.abs(decoded.pixels.astype(int) - pixels).mean() < 3


def test_image_below_min_side_is_rejected() -> None:
    small = encode(Image.fromarray(np.zeros((32, 32), dtype=np.uint8)), "PNG")

    with pytest.raises(InvalidInput) as info:
        decode_image(small, ImageFormat.PNG, LIMITS)

    assert (info.value.field, info.value.rule) == ("file", "range")


def test_image_above_max_side_is_rejected() -> None:
    wide = encode(Image.fromarray(np.zeros((64, 129), dtype=np.uint8)), "PNG")

    with pytest.raises(InvalidInput) as info:
        decode_image(wide, ImageFormat.PNG, LimitsSettings(min_side=64, max_side=128))

    assert (info.value.field, info.value.rule) == ("file", "range")
    assert "width 129" in info.value.detail


def test_crafted_png_header_passes_pillow() -> None:
    """The crafted header is a valid PNG: Pillow reads its declared size."""
    with Image.open(io.BytesIO(png_declaring(300, 200))) as image:
        assert image.size == (300, 200)


@pytest.mark.parametrize("side", [3000, 10_000, 100_000])
def test_huge_declared_size_is_refused_before_decoding(side: int) -> None:
    started = time.perf_counter()

    with pytest.raises(InvalidInput) as info:  # never MemoryError or DecompressionBomb*
        decode_image(png_declaring(side, side), ImageFormat.PNG, LIMITS)

    assert time.perf_counter() - started < 1.0
    assert info.value.field == "file"


@pytest.mark.parametrize("side", [3000, 10_000, 100_000])
def test_huge_declared_size_is_a_range_error(side: int) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_image(png_declaring(side, side), ImageFormat.PNG, LIMITS)

    assert info.value.rule == "range"


def test_truncated_png_is_invalid_input() -> None:
    data = encode(Image.fromarray(RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)), "PNG")

    with pytest.raises(InvalidInput) as info:
        decode_image(data[: len(data) // 2], ImageFormat.PNG, LIMITS)

    assert (info.value.field, info.value.rule) == ("file", "png")


def test_truncated_jpeg_is_invalid_input() -> None:
    data = encode(Image.fromarray(smooth(128, 128, 3)), "JPEG")

    with pytest.raises(InvalidInput) as info:
        decode_image(data[: len(data) // 2], ImageFormat.JPEG, LIMITS)

    assert (info.value.field, info.value.rule) == ("file", "jpeg")


@pytest.mark.parametrize("cut", [9, 20, 33, 40, 60])
def test_png_cut_anywhere_in_its_header_is_invalid_input(cut: int) -> None:
    data = encode(Image.fromarray(np.zeros((64, 64), dtype=np.uint8)), "PNG")

    with pytest.raises(InvalidInput):
        decode_image(data[:cut], ImageFormat.PNG, LIMITS)


def test_random_bytes_after_png_signature_are_invalid_input() -> None:
    data = PNG_MAGIC + np.random.default_rng(0).bytes(4096)

    with pytest.raises(InvalidInput) as info:
        decode_image(data, ImageFormat.PNG, LIMITS)

    assert (info.value.field, info.value.rule) == ("file", "png")


def test_corrupt_pixel_data_is_invalid_input() -> None:
    data = bytearray(encode(Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)), "PNG"))
    idat = data.index(b"IDAT") + 4
    data[idat + 2 : idat + 40] = b"\xff" * 38  # breaks the zlib stream; the CRC is now wrong too

    with pytest.raises(InvalidInput):
        decode_image(bytes(data), ImageFormat.PNG, LIMITS)


def test_png_bytes_are_not_read_as_jpeg() -> None:
    data = encode(Image.fromarray(np.zeros((64, 64), dtype=np.uint8)), "PNG")

    with pytest.raises(InvalidInput) as info:
        decode_image(data, ImageFormat.JPEG, LIMITS)

    assert (info.value.field, info.value.rule) == ("file", "jpeg")
