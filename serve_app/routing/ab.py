"""How a request picks its arm of an endpoint's route (``serve_app.catalog.routes``).

Pure: the preprocessors apply it through the serving plan. A sticky route hashes the
request's key, so the same patient (by pseudonym) always lands on the same arm for as
long as the weights stay the same.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from itertools import accumulate

from serve_app.catalog.routes import Arm, RouteConfig


def _unit_interval(endpoint: str, key: str) -> float:
    """A uniform draw in [0, 1) fixed by ``(endpoint, key)``; routes split independently."""
    digest = hashlib.sha256(f"{endpoint}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_arm(endpoint: str, route: RouteConfig, key: str | None, rng: random.Random) -> Arm:
    """The arm for one request: by ``key`` on a sticky route (when it has one), by ``rng``
    otherwise, each arm in proportion to its weight."""
    if route.sticky_key is not None and key is not None:
        draw = _unit_interval(endpoint, key)
    else:
        draw = rng.random()
    bounds = list(accumulate(arm.weight for arm in route.arms))
    index = bisect_right(bounds, draw * bounds[-1])
    return route.arms[min(index, len(route.arms) - 1)]
