from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serve_app.codecs.decode import decode
from serve_app.codecs.types import EncodedImage, ImageFormat
from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings

LIMITS = LimitsSettings()
PIXELS = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, format=fmt)
    return buffer.getvalue()


def test_png_goes_to_the_image_codec() -> None:
    decoded = decode(EncodedImage(encoded("PNG"), ImageFormat.PNG), LIMITS)

    assert decoded.format is ImageFormat.PNG
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], PIXELS)
    assert decoded.frame is None and decoded.frames is None


def test_jpeg_goes_to_the_image_codec() -> None:
    decoded = decode(EncodedImage(encoded("JPEG"), ImageFormat.JPEG), LIMITS)

    assert decoded.format is ImageFormat.JPEG
    assert decoded.pixels.shape == (64, 64, 1)


def test_dicom_goes_to_the_dicom_codec() -> None:
    with pytest.raises(InvalidInput) as info:
        decode(EncodedImage(b"\x00" * 128 + b"DICMjunk", ImageFormat.DICOM), LIMITS)

    assert info.value.rule is not None and info.value.rule.startswith("dicom")


@pytest.mark.parametrize(("fmt", "name"), [(ImageFormat.PNG, "PNG"), (ImageFormat.JPEG, "JPEG")])
@pytest.mark.parametrize("frame", [0, 3])
def test_frame_applies_to_dicom_only(fmt: ImageFormat, name: str, frame: int) -> None:
    with pytest.raises(InvalidInput) as info:
        decode(EncodedImage(encoded(name), fmt, frame=frame), LIMITS)

    assert (info.value.field, info.value.rule) == ("frame", "dicom-only")


def test_limits_are_passed_through() -> None:
    with pytest.raises(InvalidInput) as info:
        decode(EncodedImage(encoded("PNG"), ImageFormat.PNG), LimitsSettings(min_side=65))

    assert (info.value.field, info.value.rule) == ("file", "range")
