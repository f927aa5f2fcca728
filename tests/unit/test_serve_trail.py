"""The ingress's client of the audit writer: every call is bounded, and a write whose
outcome is unknown is never reported as "nothing was stored" (security review, low).

The writer's handle is the one stand-in: Ray's transport is the true boundary here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from deployments.audit_writer import ServeTrail
from serve_app.audit.events import AuditEvent
from serve_app.audit.group_commit import commit_each
from serve_app.errors import InvalidInput, OutcomeUnknown, ServiceUnavailable
from serve_app.records.inference import InferenceRecord
from tests.local_app import results_of, trail_in


class Method:
    def __init__(self, behaviour: Callable[..., Awaitable[Any]]) -> None:
        self.remote = behaviour


class Handle:
    """A deployment handle whose every method behaves as ``behaviour``."""

    deployment_name = "AuditWriter"

    def __init__(self, behaviour: Callable[..., Awaitable[Any]]) -> None:
        self._method = Method(behaviour)

    def __getattr__(self, name: str) -> Method:
        return self._method


async def hangs(*_: Any) -> None:
    await asyncio.sleep(3600)


async def dies(*_: Any) -> None:
    raise ConnectionResetError("the writer's replica died mid-call")


async def database_down(*_: Any) -> None:
    raise ServiceUnavailable("the audit store is unavailable")


def answer(inference_id: str) -> AuditEvent:
    confidence = math.nan if inference_id.endswith("nan") else 0.8
    return AuditEvent.inference(
        InferenceRecord(
            inference_id=inference_id,
            model_name="chest",
            model_version="1",
            outputs=(0.2, 0.8),
            confidence=confidence,
            prediction="pneumonia",
            threshold=0.5,
            latency_ms=3.0,
            requested_by="dr-who",
            role="clinician",
        )
    )


async def sent(behaviour: Callable[..., Awaitable[Any]], *callers: list[str]) -> list[Any]:
    """What each caller of one coalesced message gets (``_send`` is what ``serve.batch``
    calls with the callers' events; it needs a replica to run under)."""
    trail = ServeTrail(Handle(behaviour), max_batch_events=16, timeout_s=0.2)
    batches = [[answer(i) for i in ids] for ids in callers]
    try:
        return await asyncio.wait_for(trail._send(batches), 10)
    except ServiceUnavailable as error:
        return [error] * len(callers)


def send(behaviour: Callable[..., Awaitable[Any]], *callers: list[str]) -> list[Any]:
    return asyncio.run(sent(behaviour, *callers))


@pytest.mark.parametrize("behaviour", [hangs, dies], ids=["times out", "writer dies"])
def test_a_write_whose_outcome_is_unknown_says_so(
    behaviour: Callable[..., Awaitable[Any]],
) -> None:
    first, second = send(behaviour, ["inf-1", "inf-2"], ["inf-3"])
    for error, mine, others in (
        (first, ("inf-1", "inf-2"), "inf-3"),
        (second, ("inf-3",), "inf-1"),
    ):
        assert isinstance(error, OutcomeUnknown)
        assert "unknown" in error.detail and "nothing was stored" not in error.detail
        assert all(i in error.detail for i in mine) and others not in error.detail
        assert error.to_problem()["status"] == 503


def test_the_writers_own_outage_still_says_nothing_was_stored() -> None:
    (error,) = send(database_down, ["inf-1"])
    assert not isinstance(error, OutcomeUnknown)
    assert error.detail == "the audit store is unavailable"


def test_each_caller_of_one_message_gets_its_own_outcome(tmp_path: Path) -> None:
    """The writer commits each caller of a coalesced message as a caller of its own: here
    its group commit over a trail of its own."""

    async def main() -> tuple[list[Any], set[str]]:
        async with trail_in(tmp_path) as trail:

            async def writer(callers: list[list[AuditEvent]]) -> list[Any]:
                return await commit_each(trail.record, callers)

            outcomes = await sent(writer, ["inf-1"], ["inf-nan"], ["inf-2"])
            return outcomes, {r.inference_id for r in await results_of(trail)}

    (good, bad, other), stored = asyncio.run(main())
    assert good is None and other is None
    assert isinstance(bad, InvalidInput) and (bad.field, bad.rule) == ("confidence", "finite")
    assert stored == {"inf-1", "inf-2"}


def test_reads_are_bounded_too() -> None:
    async def main() -> None:
        trail = ServeTrail(Handle(hangs), max_batch_events=16, timeout_s=0.2)
        for read in (trail.verify(), trail.entries(0, 10), trail.result("inf-1")):
            with pytest.raises(ServiceUnavailable):
                await asyncio.wait_for(read, 10)

    asyncio.run(main())
