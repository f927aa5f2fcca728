"""A preprocessing replica's plan follower asks the registry on a miss: for a plan newer
than the miss, once for misses at once, and never more than every ``MISS_ASK_GAP_S``.

The registry is a stand-in for its Ray handle (``serving.remote()``), counting asks; the
plans are real ``ServingPlan`` objects."""

from __future__ import annotations

import asyncio
from typing import Any

from deployments.plan_follower import MISS_ASK_GAP_S, PlanFollower
from serve_app.routing.plan import ServingPlan
from tests.unit.test_serving_plan import spec


class Registry:
    """Answers ``serving.remote()`` with its current plan after ``delay_s``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.plan = ServingPlan({})
        self.asks = 0
        self.delay_s = delay_s
        self.serving = self

    def remote(self) -> Any:
        self.asks += 1

        async def answer() -> ServingPlan:
            await asyncio.sleep(self.delay_s)
            return self.plan

        return answer()


class Pipeline:
    def __init__(self) -> None:
        self.plan = ServingPlan({})

    def follow(self, plan: ServingPlan) -> None:
        self.plan = plan


def follower(registry: Registry) -> tuple[PlanFollower, Pipeline]:
    pipeline = Pipeline()
    return PlanFollower(registry, pipeline), pipeline  # type: ignore[arg-type]  # stand-ins


def test_a_miss_right_after_a_poll_still_asks_for_the_newer_plan() -> None:
    async def run() -> None:
        registry = Registry()
        follow, pipeline = follower(registry)
        await follow.once()  # the periodic poll, just before the route changed
        registry.plan = ServingPlan({"chest": spec("chest", "2.0")})  # then the change
        assert await follow.refresh() is True
        assert pipeline.plan is registry.plan

    asyncio.run(run())


def test_misses_at_once_share_one_ask() -> None:
    async def run() -> None:
        registry = Registry(delay_s=0.05)
        follow, _ = follower(registry)
        await asyncio.gather(*(follow.refresh() for _ in range(20)))
        assert registry.asks == 1

    asyncio.run(run())


def test_misses_in_a_row_ask_at_most_every_gap() -> None:
    async def run() -> None:
        registry = Registry()
        follow, _ = follower(registry)
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < 0.5:
            await follow.refresh()  # a caller naming what nothing serves, again and again
        assert registry.asks <= 0.5 / MISS_ASK_GAP_S + 2

    asyncio.run(run())
