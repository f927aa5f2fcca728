from __future__ import annotations

import logging

import pytest

from serve_app.codecs.sniff import DICOM_MAGIC, JPEG_MAGIC, PNG_MAGIC, describe, sniff
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
    ("data", "declared", "filename", "expected", "said", "by"),
    [
        (PNG, "image/jpeg", "scan.png", ImageFormat.PNG, "jpeg", "content-type"),
        (PNG, "application/dicom", "scan.dcm", ImageFormat.PNG, "dicom", "content-type"),
        (PNG, None, "MRN-123 scan.DCM", ImageFormat.PNG, "dicom", "file-name"),
        (JPEG, "image/png", None, ImageFormat.JPEG, "png", "content-type"),
        (JPEG, "application/octet-stream", "x.dicom", ImageFormat.JPEG, "dicom", "file-name"),
        (DICOM, "image/png", "scan.png", ImageFormat.DICOM, "png", "content-type"),
        (DICOM, "IMAGE/JPEG", None, ImageFormat.DICOM, "jpeg", "content-type"),
        (DICOM, None, "MRN-123.jpg", ImageFormat.DICOM, "jpeg", "file-name"),
    ],
)
def test_a_declared_type_the_bytes_contradict_is_logged_and_the_bytes_win(
    caplog: pytest.LogCaptureFixture,
    data: bytes,
    declared: str | None,
    filename: str | None,
    expected: ImageFormat,
    said: str,
    by: str,
) -> None:
    with caplog.at_level(logging.INFO, logger="serve_app.codecs.sniff"):
        assert sniff(data, declared, filename) is expected

    (record,) = caplog.records
    facts = [getattr(record, key) for key in ("declared", "declared_by", "detected")]
    assert facts == [said, by, expected.value]
    assert "MRN" not in record.getMessage() and "MRN" not in str(record.__dict__)


@pytest.mark.parametrize(
    ("declared", "filename"),
    [
        ("image/png", "scan.dcm"),
        (None, "scan.png"),
        ("application/octet-stream", "scan"),
        (None, None),
    ],
)
def test_agreeing_or_silent_declarations_log_nothing(
    caplog: pytest.LogCaptureFixture, declared: str | None, filename: str | None
) -> None:
    with caplog.at_level(logging.INFO, logger="serve_app.codecs.sniff"):
        assert sniff(PNG, declared, filename) is ImageFormat.PNG

    assert caplog.records == []


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"GIF89a" + b"\x00" * 200, "GIF"),
        (b"BM" + b"\x00" * 200, "BMP"),
        (b"BMI of the patient: 22", "text"),
        (b"II*\x00" + b"\x00" * 200, "TIFF"),
        (b"%PDF-1.7\n", "PDF"),
        (b"PK\x03\x04" + b"\x00" * 50, "ZIP"),
        (b"", "empty"),
        ("patient: Jane \u00e9".encode() * 100, "text"),
        (b"\x00\x01\x02" * 100, "unknown binary data"),
    ],
)
def test_unknown_bytes_are_a_format_error_whatever_was_declared(data: bytes, found: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        sniff(data, "image/png", "scan.png")

    assert (info.value.field, info.value.rule) == ("file", "format")
    assert info.value.detail.startswith(f"file content is {found};")
    assert describe(data) == found
