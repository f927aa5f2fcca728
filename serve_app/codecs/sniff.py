"""Detect an upload's format from its bytes; a declared type may only agree with them."""

from __future__ import annotations

from serve_app.codecs.types import ImageFormat
from serve_app.errors import UnsupportedMediaType

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DICOM_MAGIC = b"DICM"
DICOM_MAGIC_OFFSET = 128

DECLARED_FORMATS = {
    "image/png": ImageFormat.PNG,
    "image/jpeg": ImageFormat.JPEG,
    "application/dicom": ImageFormat.DICOM,
}
"""Media types that name one format. Any other (``application/octet-stream``, none, a
guess from a file name) says nothing, and the bytes alone decide."""


def sniff(data: bytes, declared: str | None = None) -> ImageFormat:
    """The format of ``data``, told by its magic bytes, never by its name.

    ``declared`` is the upload's own Content-Type: when it names one of our formats,
    the bytes must be that format (415 ``content-mismatch`` otherwise).
    """
    fmt = _magic(data)
    media_type = (declared or "").partition(";")[0].strip().lower()
    expected = DECLARED_FORMATS.get(media_type)
    if expected is not None and fmt is not expected:
        raise UnsupportedMediaType(
            f"file is declared {media_type} but its content is {fmt.value.upper()}",
            field="file",
            rule="content-mismatch",
        )
    return fmt


def _magic(data: bytes) -> ImageFormat:
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
