from __future__ import annotations

import pytest

from serve_app.codecs.sniff import DICOM_MAGIC, JPEG_MAGIC, PNG_MAGIC, sniff
from serve_app.codecs.types import ImageFormat
from serve_app.errors import UnsupportedMediaType

PREAMBLE = b"\x00" * 128


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG_MAGIC, ImageFormat.PNG),
        (PNG_MAGIC + b"\x00\x00\x00\rIHDR" + b"\xff" * 300, ImageFormat.PNG),
        (JPEG_MAGIC, ImageFormat.JPEG),
        (JPEG_MAGIC + b"\xe0\x00\x10JFIF\x00" + b"junk" * 50, ImageFormat.JPEG),
        (PREAMBLE + DICOM_MAGIC, ImageFormat.DICOM),
        (b"any preamble text".ljust(128, b"!") + DICOM_MAGIC + b"\x02\x00", ImageFormat.DICOM),
    ],
    ids=["png-bare", "png", "jpeg-bare", "jpeg", "dicom-bare", "dicom-odd-preamble"],
)
def test_format_is_told_by_magic_bytes(data: bytes, expected: ImageFormat) -> None:
    assert sniff(data) is expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is not an image",
        PNG_MAGIC[:6],
        PNG_MAGIC[:7] + b"\x00" + b"\x00" * 200,
        JPEG_MAGIC[:2],
        DICOM_MAGIC + PREAMBLE,
        PREAMBLE[:127] + DICOM_MAGIC,
        PREAMBLE + b"\x00" + DICOM_MAGIC,
        PREAMBLE + DICOM_MAGIC[:3],
        b"GIF89a" + b"\x00" * 200,
    ],
    ids=[
        "empty",
        "text",
        "png-truncated-signature",
        "png-wrong-last-byte",
        "jpeg-two-bytes",
        "dicm-at-0",
        "dicm-at-127",
        "dicm-at-129",
        "dicm-cut-short",
        "gif",
    ],
)
def test_anything_else_is_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        sniff(data)

    assert (info.value.field, info.value.rule) == ("file", "format")


PNG = PNG_MAGIC + b"\x00" * 200
JPEG = JPEG_MAGIC + b"\x00" * 200
DICOM = PREAMBLE + DICOM_MAGIC + b"\x02\x00"


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (PNG, "image/png", ImageFormat.PNG),
        (JPEG, "image/jpeg", ImageFormat.JPEG),
        (DICOM, "application/dicom", ImageFormat.DICOM),
        (DICOM, "Application/DICOM; charset=binary", ImageFormat.DICOM),
        (PNG, "application/octet-stream", ImageFormat.PNG),
        (JPEG, None, ImageFormat.JPEG),
        (DICOM, "", ImageFormat.DICOM),
        (PNG, "image/jpg", ImageFormat.PNG),  # not a registered type: says nothing
        (PNG, "text/plain", ImageFormat.PNG),
    ],
)
def test_a_declared_type_that_agrees_or_says_nothing_is_accepted(
    data: bytes, declared: str | None, expected: ImageFormat
) -> None:
    assert sniff(data, declared) is expected


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (PNG, "image/jpeg"),
        (PNG, "application/dicom"),
        (JPEG, "image/png"),
        (DICOM, "image/png"),
        (DICOM, "IMAGE/JPEG"),
    ],
)
def test_a_declared_type_the_bytes_contradict_is_unsupported(data: bytes, declared: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        sniff(data, declared)

    assert (info.value.field, info.value.rule) == ("file", "content-mismatch")
    assert declared.lower() in info.value.detail


def test_unknown_bytes_are_a_format_error_whatever_was_declared() -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        sniff(b"GIF89a" + b"\x00" * 200, "image/png")

    assert info.value.rule == "format"
