"""An endpoint's route set or removed, stored as a ``Route`` row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RouteChange:
    """An endpoint's new route (``RouteConfig`` as JSON), or ``None`` for its removal."""

    endpoint: str
    config: Mapping[str, Any] | None
