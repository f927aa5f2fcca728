"""Per-arm statistics of an endpoint's stored results: counts, latency, positive rate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from serve_app.schemas.routes import ArmStats, LatencyPercentiles, RouteStats


class RoutedResult(Protocol):
    """What a stored result row (or ``StoredResult``) offers."""

    arm: str | None
    shadow_of: str | None
    latency_ms: float
    positive: bool | None


def _arm(model: str, results: list[RoutedResult]) -> ArmStats:
    latencies = np.array([r.latency_ms for r in results], dtype=np.float64)
    p50, p95, p99 = (round(float(v), 3) for v in np.percentile(latencies, [50, 95, 99]))
    known = [r.positive for r in results if r.positive is not None]
    return ArmStats(
        model=model,
        count=len(results),
        latency_ms=LatencyPercentiles(p50=p50, p95=p95, p99=p99),
        positive_rate=round(sum(known) / len(known), 6) if known else None,
    )


def summarize(endpoint: str, results: Iterable[RoutedResult]) -> RouteStats:
    """Group ``results`` (one endpoint's) by arm, shadow copies apart."""
    arms: dict[str, list[RoutedResult]] = defaultdict(list)
    shadows: dict[str, list[RoutedResult]] = defaultdict(list)
    total = 0
    for result in results:
        total += 1
        (shadows if result.shadow_of else arms)[result.arm or "?"].append(result)
    return RouteStats(
        endpoint=endpoint,
        results=total,
        arms=[_arm(model, rows) for model, rows in sorted(arms.items())],
        shadows=[_arm(model, rows) for model, rows in sorted(shadows.items())],
    )
