"""Readiness probes: a deadline each, and reasons written by us, never an exception's text."""

from __future__ import annotations

import asyncio

from serve_app.errors import ServiceUnavailable
from serve_app.readiness import Component, expect, model_components, probe
from serve_app.runtime.lifecycle import ModelState, RunnerStatus

SECRET = "postgres://medai:hunter2@db.internal/records"


def test_a_probe_that_raises_is_named_not_shown() -> None:
    async def leaks() -> None:
        raise ConnectionError(f"could not connect to {SECRET}")

    async def refuses() -> None:
        raise ServiceUnavailable(f"the audit trail is halted: {SECRET}")

    down = asyncio.run(probe("AuditWriter", leaks, 1))
    refused = asyncio.run(probe("AuditWriter", refuses, 1))

    assert down == Component("AuditWriter", False, "unavailable (ConnectionError)")
    assert refused == Component("AuditWriter", False, "unavailable")


def test_a_probe_past_its_deadline_is_not_ready() -> None:
    async def never() -> None:
        await asyncio.Event().wait()

    assert asyncio.run(probe("Registry", never, 0.05)) == Component(
        "Registry", False, "no answer within 0.05 s"
    )


def test_a_probe_reports_the_reason_its_check_gives() -> None:
    async def standby() -> str:
        return "audit writer is standby"

    async def fine() -> None:
        return None

    assert asyncio.run(probe("AuditWriter", standby, 1)) == Component(
        "AuditWriter", False, "audit writer is standby"
    )
    assert asyncio.run(probe("Registry", fine, 1)) == Component("Registry", True, "ready")


def test_each_served_model_is_ready_only_when_its_runner_says_so() -> None:
    statuses = {
        "chest": RunnerStatus(ModelState.READY, "CUDAExecutionProvider"),
        "derm": RunnerStatus(ModelState.LOADING),
    }

    assert model_components(statuses, ["chest", "derm", "knee"]) == [
        Component("model-chest", True, "ready", "CUDAExecutionProvider"),
        Component("model-derm", False, "model is loading"),
        Component("model-knee", False, "no state reported"),
    ]


def test_an_expected_component_that_did_not_report_is_not_ready() -> None:
    reported = [Component("Ingress", True)]

    assert expect(reported, ["Ingress", "Preprocessor"]) == [
        Component("Ingress", True),
        Component("Preprocessor", False, "not reported"),
    ]
