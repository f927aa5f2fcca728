"""Tell an upload's format from its bytes; what it was declared as only gets logged.

Browsers derive a part's Content-Type from the file name, so a PNG saved as ``scan.dcm``
arrives as ``application/dicom``: the bytes decide, and a declaration they contradict is
logged (the two formats, never the name) rather than refused.
"""

from __future__ import annotations

import logging
from pathlib import PurePath

from serve_app.codecs.types import ImageFormat
from serve_app.errors import UnsupportedMediaType

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DICOM_MAGIC = b"DICM"
DICOM_MAGIC_OFFSET = 128

DECLARED_FORMATS = {
    "image/png": ImageFormat.PNG,
    "image/jpeg": ImageFormat.JPEG,
    "application/dicom": ImageFormat.DICOM,
}
"""Media types that name one format. Any other (``application/octet-stream``, none) says
nothing."""

NAMED_FORMATS = {
    ".png": ImageFormat.PNG,
    ".jpg": ImageFormat.JPEG,
    ".jpeg": ImageFormat.JPEG,
    ".dcm": ImageFormat.DICOM,
    ".dicom": ImageFormat.DICOM,
}
"""File name suffixes that name one format."""

FOREIGN_MAGIC = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 (JP2)"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x1f\x8b", "gzip"),
)
"""Formats we do not serve, named in the 415 so the sender knows what they sent."""


def sniff(data: bytes, declared: str | None = None, filename: str | None = None) -> ImageFormat:
    """The format of ``data``, told by its magic bytes, never by its name.

    ``declared`` (the part's Content-Type) and ``filename`` may name another format: the
    bytes still decide, and the disagreement is logged without the name. Content that is
    none of ours is a 415 (``file``, ``format``) naming what it looks like.
    """
    fmt = _magic(data)
    if fmt is None:
        raise UnsupportedMediaType(
            f"file content is {describe(data)}; only PNG, JPEG and DICOM are served "
            "(PNG or JPEG signature, or DICM at byte 128)",
            field="file",
            rule="format",
        )
    said, by = declared_format(declared, filename)
    if said is not None and said is not fmt:
        # NOTE: formats only: a file name or a free-text type could carry PHI.
        log.info(
            "declared format differs from content",
            extra={"declared": said.value, "declared_by": by, "detected": fmt.value},
        )
    return fmt


def declared_format(
    content_type: str | None, filename: str | None
) -> tuple[ImageFormat | None, str | None]:
    """The format a part's type (first) or its file name's suffix names, and which said it."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type in DECLARED_FORMATS:
        return DECLARED_FORMATS[media_type], "content-type"
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in NAMED_FORMATS:
        return NAMED_FORMATS[suffix], "file-name"
    return None, None


def _magic(data: bytes) -> ImageFormat | None:
    if data.startswith(PNG_MAGIC):
        return ImageFormat.PNG
    if data.startswith(JPEG_MAGIC):
        return ImageFormat.JPEG
    if data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC:
        return ImageFormat.DICOM
    return None


def describe(data: bytes) -> str:
    """What ``data`` looks like, in words: one of ours in capitals, a known foreign format,
    empty, text, or unknown binary."""
    fmt = _magic(data)
    if fmt is not None:
        return fmt.value.upper()
    if not data:
        return "empty"
    for magic, name in FOREIGN_MAGIC:
        if data.startswith(magic):
            return name
    if data.startswith(b"BM") and data[6:10] == b"\x00" * 4:  # NOTE: "BM" alone is text too
        return "BMP"
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # NOTE: not a character cut by the 512-byte head
            return "unknown binary data"
    return "unknown binary data" if b"\x00" in head else "text"
