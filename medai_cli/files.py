"""The files ``medai infer`` sends: found under the paths given, recognised by content."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from serve_app.codecs.sniff import sniff
from serve_app.codecs.types import ImageFormat
from serve_app.errors import UnsupportedMediaType

HEAD_BYTES = 512
"""Enough to tell a format (DICM sits at byte 128) and to tell text from binary."""

UPLOAD_NAMES = {
    ImageFormat.PNG: ("image.png", "image/png"),
    ImageFormat.JPEG: ("image.jpg", "image/jpeg"),
    ImageFormat.DICOM: ("image.dcm", "application/dicom"),
}
"""The name and part type a file is sent with: its format's, never its own name, which
may carry a patient's identity."""


@dataclass(frozen=True)
class Candidate:
    path: Path
    format: ImageFormat | None
    problem: str | None = None
    """Why it is not sent: unreadable, or no supported image."""


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path given, and every file below each folder given (sorted, dot-files and
    dot-folders below it left out); a path that does not exist is yielded as given."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                found
                for found in path.rglob("*")
                if found.is_file()
                and not any(part.startswith(".") for part in found.relative_to(path).parts)
            )
        else:
            yield path


def identify(path: Path) -> Candidate:
    """``path`` with its format told from its first bytes, or the reason it is not sent."""
    try:
        with path.open("rb") as file:
            head = file.read(HEAD_BYTES)
    except OSError as error:
        return Candidate(path, None, f"unreadable: {error.strerror or type(error).__name__}")
    try:
        return Candidate(path, sniff(head))
    except UnsupportedMediaType as error:
        return Candidate(path, None, f"not sent: {error.detail}")
