"""The physical size of a DICOM image's pixels, for areas and lengths in mm."""

from __future__ import annotations

import math

from pydicom.dataset import Dataset

MAX_SPACING_MM = 100.0
"""Largest pixel spacing read as such: beyond it a value is a writer's mistake, and areas
made from it would be nonsense."""


def pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """``PixelSpacing`` (between rows, between columns) in mm; ``None`` when the file has
    none or an odd one (not two numbers, not finite, not in (0, ``MAX_SPACING_MM``]).

    Spacing only adds mm to an answer, so an odd value is dropped, never refused.
    NOTE: ``ImagerPixelSpacing`` (at the detector, not the patient) is not used, nor the
    per-frame functional groups of enhanced multi-frame objects.
    """
    try:
        value = ds.get("PixelSpacing")
        numbers = [float(v) for v in value] if value is not None else []
    except (TypeError, ValueError, OverflowError):
        return None
    if len(numbers) != 2:
        return None
    if not all(math.isfinite(v) and 0 < v <= MAX_SPACING_MM for v in numbers):
        return None
    return numbers[0], numbers[1]
