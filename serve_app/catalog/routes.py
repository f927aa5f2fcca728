"""An endpoint's route: the weighted arms and shadow copies an A/B route names.

Stored (``Route`` rows), audited (``RouteChange``), served on the wire (``RouteOut``) and
followed by the preprocessors (``serve_app.routing``): a plain type below all of them.
"""

from __future__ import annotations

import re
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
