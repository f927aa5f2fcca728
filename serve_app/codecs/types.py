from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np


class ImageFormat(StrEnum):
    """How an image reached us."""

    PIXELS = "pixels"
    """A JSON list of pixel values."""
    PNG = "png"
    JPEG = "jpeg"
    DICOM = "dicom"


@dataclass(frozen=True)
class EncodedImage:
    """An uploaded file whose format was sniffed from its bytes, not yet decoded."""

    data: bytes
    format: ImageFormat
    frame: int | None = None
    """DICOM frame to use (0-based); ``None`` means the middle frame."""

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class TensorInput:
    """One image already in a model's input shape and type, as a client sent it (a v2
    tensor's row): nothing to decode or resize; ``name`` must be the model's input."""

    name: str
    array: np.ndarray
    """Shape (1, ...): the batch axis, then the model's own dimensions."""

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)


@dataclass(frozen=True)
class DecodedImage:
    """Pixels ready for preprocessing.

    ``pixels`` has shape (height, width, channels) with channels 1 or 3.
    Integer pixels use their dtype's full range (uint8 0..255, uint16 0..65535);
    floating pixels are in 0..1.
    """

    pixels: np.ndarray
    format: ImageFormat
    frame: int | None = None
    """Frame used, for multi-frame DICOM."""
    frames: int | None = None
    """Frames in the file, for DICOM."""
    modality: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    """DICOM PixelSpacing (between rows, between columns) in mm, when stated and sane."""
    dicom_source: dict[str, Any] | None = None
    """A DICOM's UIDs and geometry (``codecs.dicom_reference``): what a DICOM result
    refers to; ``None`` for other formats or a DICOM without valid UIDs."""

    @property
    def nbytes(self) -> int:
        return int(self.pixels.nbytes)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])
