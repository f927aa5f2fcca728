from __future__ import annotations

import pytest

from serve_app.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("alice") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("alice") == 0.0
    assert buckets.take("alice") == pytest.approx(0.5)


def test_users_have_their_own_buckets() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=Clock())
    assert buckets.take("alice") == 0.0
    assert buckets.take("alice") > 0
    assert buckets.take("bob") == 0.0


def test_an_idle_bucket_refills_only_to_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10.0, burst=2, clock=clock)
    buckets.take("alice")
    clock.now += 3600
    assert [buckets.take("alice") > 0 for _ in range(3)] == [False, False, True]


def test_rejected_requests_do_not_dig_a_deeper_hole() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    buckets.take("alice")
    waits = [buckets.take("alice") for _ in range(50)]
    assert max(waits) == pytest.approx(1.0)
