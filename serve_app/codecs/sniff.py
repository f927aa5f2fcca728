"""Detect an upload's format from its bytes, never from its name or header."""

from __future__ import annotations

from serve_app.codecs.types import ImageFormat
from serve_app.errors import UnsupportedMediaType

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DICOM_MAGIC = b"DICM"
DICOM_MAGIC_OFFSET = 128


def sniff(data: bytes) -> ImageFormat:
    if data.startswith(PNG_MAGIC):
        return ImageFormat.PNG
    if data.startswith(JPEG_MAGIC):
        return ImageFormat.JPEG
    if data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC:
        return ImageFormat.DICOM
    raise UnsupportedMediaType(
        "file is not PNG, JPEG or DICOM (no PNG/JPEG signature, no DICM at byte 128)",
        field="file",
        rule="format",
    )
