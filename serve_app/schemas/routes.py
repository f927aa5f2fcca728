"""Wire shapes of A/B routes and their per-arm statistics."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from serve_app.catalog.routes import RouteConfig

MAX_STATS_RESULTS = 100_000
"""Most results one ``GET /routes/{endpoint}/stats`` reads."""


class RouteOut(RouteConfig):
    endpoint: str
    updated_by: str = Field(description="The `sub` of the token that set the route.")
    updated_at: datetime

    @classmethod
    def stored(
        cls, endpoint: str, config: Mapping[str, Any], updated_by: str, updated_at: datetime
    ) -> RouteOut:
        """A route as stored: its ``RouteConfig`` JSON and who set it when."""
        fields = {"endpoint": endpoint, "updated_by": updated_by, "updated_at": updated_at}
        return cls.model_validate({**config, **fields})


class LatencyPercentiles(BaseModel):
    p50: float
    p95: float
    p99: float


class ArmStats(BaseModel):
    model: str = Field(description="`name:version` of the arm (or shadow).")
    count: int
    latency_ms: LatencyPercentiles = Field(description="Each answer's time in the platform.")
    positive_rate: float | None = Field(
        description="Share of results whose positive class won; null for a model without one."
    )
    agreement: float | None = Field(
        None,
        description="A shadow's share of predictions equal to the answer it ran beside (of"
        " those whose answer was read too); null for an arm.",
    )
    mean_dice: float | None = Field(
        None,
        description="Segmentation shadows: mean Dice between its masks and the answer's"
        " (each class's, averaged; both empty counts 1); null otherwise.",
    )
    count_agreement: float | None = Field(
        None,
        description="Detection shadows: share of its answers keeping as many boxes as the"
        " answer it ran beside; null otherwise.",
    )


class RouteStats(BaseModel):
    endpoint: str
    results: int = Field(description="Results read: the endpoint's newest, at most `limit`.")
    arms: list[ArmStats] = Field(description="Answers the route returned, by arm.")
    shadows: list[ArmStats] = Field(description="Shadow copies, stored and never returned.")
