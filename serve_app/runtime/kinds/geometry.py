"""Where a model's answer lands on the image it was made from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceGeometry:
    """The source image (the DICOM frame used) that preprocessing resized to the model's
    input: answers are mapped back onto it."""

    height: int
    width: int
    pixel_spacing_mm: tuple[float, float] | None = None
    """DICOM PixelSpacing: (between rows, between columns) in mm, when the file states it."""

    def to_json(self) -> dict[str, object]:
        spacing = self.pixel_spacing_mm
        return {
            "height": self.height,
            "width": self.width,
            "pixel_spacing_mm": None if spacing is None else list(spacing),
        }
