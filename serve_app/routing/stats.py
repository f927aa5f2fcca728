"""Per-arm statistics of an endpoint's stored results: counts, latency, positive rate, and
for a shadow how often it agreed with the answer it ran beside."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np

from serve_app.routing.overlap import mask_dice, same_count
from serve_app.schemas.routes import ArmStats, LatencyPercentiles, RouteStats


class RoutedResult(Protocol):
    """What a stored result row (or ``StoredResult``) offers."""

    inference_id: str
    arm: str | None
    shadow_of: str | None
    latency_ms: float
    prediction: str
    positive: bool | None
    findings: Mapping[str, Any] | None


Pairs = list[tuple[RoutedResult, RoutedResult]]
"""Shadow copies, each with the answer it ran beside."""


def _pairs(copies: list[RoutedResult], answers: dict[str, RoutedResult]) -> Pairs:
    """Each copy with the answer it ran beside (those whose answer is among the results
    read)."""
    return [(c, answers[c.shadow_of]) for c in copies if c.shadow_of in answers]


def _agreement(pairs: Pairs) -> float | None:
    """Share of copies predicting what their answer predicted."""
    if not pairs:
        return None
    return round(sum(c.prediction == a.prediction for c, a in pairs) / len(pairs), 6)


def _mean(
    pairs: Pairs,
    measure: Callable[[Mapping[str, Any], Mapping[str, Any]], float | bool | None],
) -> float | None:
    """Mean of ``measure`` over the pairs it applies to (both with findings it reads)."""
    values = [
        float(v)
        for c, a in pairs
        if c.findings is not None
        and a.findings is not None
        and (v := measure(c.findings, a.findings)) is not None
    ]
    return round(sum(values) / len(values), 6) if values else None


def _arm(
    model: str,
    results: list[RoutedResult],
    pairs: Pairs | None = None,
) -> ArmStats:
    latencies = np.array([r.latency_ms for r in results], dtype=np.float64)
    p50, p95, p99 = (round(float(v), 3) for v in np.percentile(latencies, [50, 95, 99]))
    known = [r.positive for r in results if r.positive is not None]
    return ArmStats(
        model=model,
        count=len(results),
        latency_ms=LatencyPercentiles(p50=p50, p95=p95, p99=p99),
        positive_rate=round(sum(known) / len(known), 6) if known else None,
        agreement=None if pairs is None else _agreement(pairs),
        mean_dice=None if pairs is None else _mean(pairs, mask_dice),
        count_agreement=None if pairs is None else _mean(pairs, same_count),
    )


def summarize(endpoint: str, results: Iterable[RoutedResult]) -> RouteStats:
    """Group ``results`` (one endpoint's) by arm, shadow copies apart."""
    arms: dict[str, list[RoutedResult]] = defaultdict(list)
    shadows: dict[str, list[RoutedResult]] = defaultdict(list)
    answers: dict[str, RoutedResult] = {}
    total = 0
    for result in results:
        total += 1
        (shadows if result.shadow_of else arms)[result.arm or "?"].append(result)
        if not result.shadow_of:
            answers[result.inference_id] = result
    return RouteStats(
        endpoint=endpoint,
        results=total,
        arms=[_arm(model, rows) for model, rows in sorted(arms.items())],
        shadows=[
            _arm(model, rows, _pairs(rows, answers)) for model, rows in sorted(shadows.items())
        ],
    )
