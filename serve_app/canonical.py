"""The one JSON encoding that is hashed and stored: sorted keys, no whitespace, UTF-8."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Raises ``ValueError`` on NaN or infinity and ``TypeError`` on non-JSON values."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def normalized(value: Any) -> Any:
    """``value`` as it reads back from JSON: tuples become lists, keys strings."""
    return json.loads(canonical_json(value))
