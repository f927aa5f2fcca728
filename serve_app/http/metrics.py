"""Prometheus metrics of one app, on a registry of its own (tests stay order-independent).

Ray Serve exports its own replica and queue metrics on Ray's metrics port; these
add what only the app knows: routes, statuses, refusals by rule, inferences by model.
Each ingress replica serves its own counters on ``GET /metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from serve_app.shadows import COUNTER, COUNTER_HELP

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "medai_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "medai_http_request_duration_seconds",
            "Time from request to last response byte, by route template.",
            ["route"],
            registry=self.registry,
        )
        self.refused = Counter(
            "medai_requests_refused",
            "Requests refused before routing (401, 429), by the rule they broke.",
            ["status", "rule"],
            registry=self.registry,
        )
        self.inferences = Counter(
            "medai_inferences",
            "Images inferred, by model reference (or error rule) and status.",
            ["model", "status"],
            registry=self.registry,
        )

        self.auth_failures = Counter(
            "medai_auth_failures",
            "Failed authentications, by what became of their count: audited, merged into "
            "a '*' client (too many addresses in one window) or lost (the trail was down).",
            ["outcome"],
            registry=self.registry,
        )
        self.shadows = Counter(
            COUNTER,
            COUNTER_HELP,
            ["outcome"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
