"""An endpoint's route: weighted arms, shadow copies, and how a request picks its arm.

Pure: the HTTP routes, the registry (which stores routes and checks that each arm names
a registered version of a served model) and the preprocessors (which apply them) build
on this. A sticky route hashes the request's key, so the same patient (by pseudonym)
always lands on the same arm for as long as the weights stay the same.
"""

from __future__ import annotations

import hashlib
import random
import re
from bisect import bisect_right
from itertools import accumulate
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PINNED_REF = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}:[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
"""``name:version``: an arm always names the version it serves."""
_PINNED = re.compile(PINNED_REF)
MAX_ARMS = 10
MAX_SHADOWS = 5


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=PINNED_REF, description="`name:version` this arm serves.")
    # NOTE: strict: "1" and true are not weights; lax coercion would take them.
    weight: float = Field(
        gt=0, le=1e6, strict=True, allow_inf_nan=False, description="Relative share."
    )


class RouteConfig(BaseModel):
    """``PUT /routes/{endpoint}``'s body."""

    model_config = ConfigDict(extra="forbid")

    arms: list[Arm] = Field(min_length=1, max_length=MAX_ARMS)
    shadow: list[str] = Field(
        default_factory=list,
        max_length=MAX_SHADOWS,
        description="`name:version`s that get a copy of each request; their results are "
        "stored and audited, never returned.",
    )
    sticky_key: Literal["patient_id"] | None = Field(
        None, description="Requests with the same value always take the same arm."
    )

    @model_validator(mode="after")
    def _distinct(self) -> RouteConfig:
        models = [arm.model for arm in self.arms]
        if len(set(models)) != len(models):
            raise ValueError("arms: each model version may be one arm only")
        if set(self.shadow) & set(models) or len(set(self.shadow)) != len(self.shadow):
            raise ValueError("shadow: a version listed once, and not also an arm")
        for ref in self.shadow:
            if not _PINNED.fullmatch(ref):
                raise ValueError(f"shadow: {ref!r} is not name:version")
        return self


def split_ref(ref: str) -> tuple[str, str]:
    """``name:version`` as ``(name, version)``."""
    name, _, version = ref.partition(":")
    return name, version


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
