from __future__ import annotations

from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings


def check_dimensions(
    width: int, height: int, limits: LimitsSettings, field: str | None = None
) -> None:
    """Reject an image whose declared size is out of bounds, before any decoding.

    ``field`` names the request field blamed (``file`` for uploads); by default
    the dimension itself (``width`` or ``height``).
    """
    for name, value in (("width", width), ("height", height)):
        if not limits.min_side <= value <= limits.max_side:
            raise InvalidInput(
                f"image {name} {value} is outside {limits.min_side}..{limits.max_side}",
                field=field or name,
                rule="range",
            )
