"""Per-arm statistics of an endpoint's stored results: counts, latency, positive rate, and
for a shadow how often it agreed with the answer it ran beside."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from serve_app.schemas.routes import ArmStats, LatencyPercentiles, RouteStats


class RoutedResult(Protocol):
    """What a stored result row (or ``StoredResult``) offers."""

    inference_id: str
    arm: str | None
    shadow_of: str | None
    latency_ms: float
    prediction: str
    positive: bool | None


def _agreement(copies: list[RoutedResult], answers: dict[str, str]) -> float | None:
    """Share of ``copies`` predicting what their answer predicted (those whose answer is
    among the results read)."""
    pairs = [(c.prediction, answers[c.shadow_of]) for c in copies if c.shadow_of in answers]
    return round(sum(a == b for a, b in pairs) / len(pairs), 6) if pairs else None


def _arm(model: str, results: list[RoutedResult], agreement: float | None = None) -> ArmStats:
    latencies = np.array([r.latency_ms for r in results], dtype=np.float64)
    p50, p95, p99 = (round(float(v), 3) for v in np.percentile(latencies, [50, 95, 99]))
    known = [r.positive for r in results if r.positive is not None]
    return ArmStats(
        model=model,
        count=len(results),
        latency_ms=LatencyPercentiles(p50=p50, p95=p95, p99=p99),
        positive_rate=round(sum(known) / len(known), 6) if known else None,
        agreement=agreement,
    )


def summarize(endpoint: str, results: Iterable[RoutedResult]) -> RouteStats:
    """Group ``results`` (one endpoint's) by arm, shadow copies apart."""
    arms: dict[str, list[RoutedResult]] = defaultdict(list)
    shadows: dict[str, list[RoutedResult]] = defaultdict(list)
    answers: dict[str, str] = {}
    total = 0
    for result in results:
        total += 1
        (shadows if result.shadow_of else arms)[result.arm or "?"].append(result)
        if not result.shadow_of:
            answers[result.inference_id] = result.prediction
    return RouteStats(
        endpoint=endpoint,
        results=total,
        arms=[_arm(model, rows) for model, rows in sorted(arms.items())],
        shadows=[
            _arm(model, rows, _agreement(rows, answers)) for model, rows in sorted(shadows.items())
        ],
    )
