"""The combiner: requests that queue while every run slot is busy run together, up to
``max_rows`` images of one version, each request getting back exactly its own rows."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from serve_app.runtime.combiner import Combiner


class GatedModel:
    """Doubles its input; each run waits for the gate; records every run's key and rows."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.gate = asyncio.Event()
        self.runs: list[tuple[str, int]] = []
        self.active = self.most_active = 0
        self.fail_on = fail_on

    async def run(self, key: str, tensors: list[np.ndarray]) -> list[np.ndarray]:
        self.runs.append((key, sum(len(t) for t in tensors)))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        await self.gate.wait()
        self.active -= 1
        if key == self.fail_on:
            raise RuntimeError("onnxruntime failed")
        return [t * 2 for t in tensors]


def request(value: float, rows: int = 1) -> np.ndarray:
    return np.full((rows, 3), value, np.float32)


async def started(model: GatedModel, runs: int) -> None:
    while len(model.runs) < runs:
        await asyncio.sleep(0)


async def busy(model: GatedModel, combiner: Combiner, key: str = "v1") -> asyncio.Task[np.ndarray]:
    """Submit ``request(0)`` for ``key`` and return once it runs (held by the gate)."""
    first = asyncio.create_task(combiner.submit(key, request(0)))
    await started(model, 1)
    return first


def test_requests_queued_behind_a_running_batch_run_as_one_batch() -> None:
    async def scenario() -> tuple[GatedModel, list[np.ndarray]]:
        model = GatedModel()
        combiner = Combiner(model.run, max_rows=16)
        first = await busy(model, combiner)
        later = [asyncio.create_task(combiner.submit("v1", request(i))) for i in range(1, 6)]
        await asyncio.sleep(0.01)
        assert len(model.runs) == 1  # NOTE: nothing else runs while the only slot is busy
        model.gate.set()
        return model, await asyncio.gather(first, *later)

    model, outputs = asyncio.run(scenario())
    assert model.runs == [("v1", 1), ("v1", 5)]
    for i, rows in enumerate(outputs):
        np.testing.assert_array_equal(rows, request(i * 2))


def test_a_queued_batch_stops_at_max_rows_and_keeps_request_order() -> None:
    async def scenario() -> tuple[GatedModel, list[np.ndarray]]:
        model = GatedModel()
        combiner = Combiner(model.run, max_rows=4)
        first = await busy(model, combiner)
        # requests of 1, 3, 2, 1, 1 rows: 1 + 3 fit in 4; 2 + 1 + 1 in the next
        later = [
            asyncio.create_task(combiner.submit("v1", request(i, rows)))
            for i, rows in enumerate([1, 3, 2, 1, 1], start=1)
        ]
        await asyncio.sleep(0.01)
        model.gate.set()
        return model, await asyncio.gather(first, *later)

    model, outputs = asyncio.run(scenario())
    assert model.runs == [("v1", 1), ("v1", 4), ("v1", 4)]
    assert [len(rows) for rows in outputs] == [1, 1, 3, 2, 1, 1]
    for i, rows in enumerate(outputs):
        np.testing.assert_array_equal(rows, np.full_like(rows, i * 2))


def test_versions_never_share_a_run() -> None:
    async def scenario() -> GatedModel:
        model = GatedModel()
        combiner = Combiner(model.run, max_rows=16)
        first = await busy(model, combiner)
        later = [
            asyncio.create_task(combiner.submit(key, request(i)))
            for i, key in enumerate(["v2", "v1", "v2", "v1"])
        ]
        await asyncio.sleep(0.01)
        model.gate.set()
        await asyncio.gather(first, *later)
        return model

    # the oldest queued request's version goes first
    assert asyncio.run(scenario()).runs == [("v1", 1), ("v2", 2), ("v1", 2)]


def test_slots_bound_the_runs_at_once() -> None:
    async def scenario() -> GatedModel:
        model = GatedModel()
        combiner = Combiner(model.run, max_rows=1, slots=2)
        tasks = [asyncio.create_task(combiner.submit("v1", request(i))) for i in range(5)]
        await started(model, 2)
        await asyncio.sleep(0.01)
        assert len(model.runs) == 2
        model.gate.set()
        await asyncio.gather(*tasks)
        return model

    model = asyncio.run(scenario())
    assert model.most_active == 2 and len(model.runs) == 5


def test_a_failed_run_fails_its_own_requests_only_and_the_next_runs() -> None:
    async def scenario() -> list[object]:
        model = GatedModel(fail_on="bad")
        combiner = Combiner(model.run, max_rows=16)
        first = await busy(model, combiner, "ok")
        bad = asyncio.create_task(combiner.submit("bad", request(1, rows=2)))
        good = asyncio.create_task(combiner.submit("ok", request(3)))
        await asyncio.sleep(0.01)
        model.gate.set()
        return await asyncio.gather(first, bad, good, return_exceptions=True)

    first, bad, good = asyncio.run(scenario())
    assert isinstance(bad, RuntimeError)
    np.testing.assert_array_equal(first, request(0))
    np.testing.assert_array_equal(good, request(6))


def test_a_caller_gone_before_its_turn_is_not_run() -> None:
    async def scenario() -> GatedModel:
        model = GatedModel()
        combiner = Combiner(model.run, max_rows=16)
        first = await busy(model, combiner)
        gone = asyncio.create_task(combiner.submit("v1", request(1, rows=3)))
        kept = asyncio.create_task(combiner.submit("v1", request(2)))
        await asyncio.sleep(0.01)
        gone.cancel()
        model.gate.set()
        await asyncio.gather(first, kept)
        with pytest.raises(asyncio.CancelledError):
            await gone
        return model

    assert asyncio.run(scenario()).runs == [("v1", 1), ("v1", 1)]


def test_an_idle_model_waits_for_company_until_the_batch_is_full() -> None:
    async def scenario() -> GatedModel:
        model = GatedModel()
        model.gate.set()
        combiner = Combiner(model.run, max_rows=3, wait_s=3600)  # NOTE: only a full batch ends it
        first = [asyncio.create_task(combiner.submit("v1", request(i))) for i in range(2)]
        await asyncio.sleep(0.01)
        assert model.runs == []  # waiting for company
        await asyncio.wait_for(asyncio.gather(*first, combiner.submit("v1", request(2))), 10)
        return model

    assert asyncio.run(scenario()).runs == [("v1", 3)]


def test_the_wait_for_company_ends_and_the_request_runs_alone() -> None:
    async def scenario() -> GatedModel:
        model = GatedModel()
        model.gate.set()
        combiner = Combiner(model.run, max_rows=8, wait_s=0.05)
        await asyncio.wait_for(combiner.submit("v1", request(1)), 10)
        return model

    assert asyncio.run(scenario()).runs == [("v1", 1)]


def test_queued_counts_the_images_waiting_not_those_running_or_gone() -> None:
    async def scenario() -> list[int]:
        model = GatedModel()
        combiner = Combiner(model.run, max_rows=16)
        first = await busy(model, combiner)
        kept = asyncio.create_task(combiner.submit("v1", request(1, rows=3)))
        gone = asyncio.create_task(combiner.submit("v1", request(2, rows=2)))
        await asyncio.sleep(0.01)
        counts = [combiner.queued]
        gone.cancel()
        await asyncio.sleep(0.01)
        counts.append(combiner.queued)
        model.gate.set()
        await asyncio.gather(first, kept)
        return [*counts, combiner.queued]

    assert asyncio.run(scenario()) == [5, 3, 0]
