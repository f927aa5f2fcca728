"""Arm choice: weights hold within 3 sigma, sticky keys always land on the same arm."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from pydantic import ValidationError

from serve_app.catalog.routes import RouteConfig
from serve_app.routing.ab import choose_arm

REQUESTS = 2000


def route(*weights: float, sticky: bool = False, shadow: tuple[str, ...] = ()) -> RouteConfig:
    arms = [{"model": f"chest:{i}.0", "weight": w} for i, w in enumerate(weights)]
    return RouteConfig(arms=arms, shadow=list(shadow), sticky_key="patient_id" if sticky else None)


def pseudonyms(n: int) -> list[str]:
    """Keys as the ingress makes them (``pt_`` + 20 hex digits of a keyed hash)."""
    rng = random.Random(42)
    return [f"pt_{rng.getrandbits(80):020x}" for _ in range(n)]


def assert_within_3_sigma(counts: Counter[str], config: RouteConfig, n: int) -> None:
    total = sum(arm.weight for arm in config.arms)
    for arm in config.arms:
        p = arm.weight / total
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[arm.model] - n * p) <= 3 * sigma, (arm.model, counts, n * p, sigma)


@pytest.mark.parametrize("weights", [(1, 1), (9, 1), (70, 20, 10), (0.5, 0.25, 0.25)])
def test_random_choice_follows_the_weights(weights: tuple[float, ...]) -> None:
    config = route(*weights)
    rng = random.Random(20261130)
    counts = Counter(choose_arm("chest-ab", config, None, rng).model for _ in range(REQUESTS))
    assert_within_3_sigma(counts, config, REQUESTS)


def test_the_check_can_fail() -> None:
    """A choice that ignored the weights would be caught by the same check."""
    config = route(9, 1)
    even = Counter({"chest:0.0": REQUESTS // 2, "chest:1.0": REQUESTS // 2})
    with pytest.raises(AssertionError):
        assert_within_3_sigma(even, config, REQUESTS)


def test_sticky_keys_always_take_the_same_arm_and_still_follow_the_weights() -> None:
    config = route(70, 30, sticky=True)
    rng = random.Random(1)
    keys = pseudonyms(REQUESTS)
    first = {key: choose_arm("chest-ab", config, key, rng).model for key in keys}
    for _ in range(3):
        assert all(choose_arm("chest-ab", config, k, rng).model == first[k] for k in keys)
    assert_within_3_sigma(Counter(first.values()), config, REQUESTS)


def test_a_sticky_route_without_a_key_draws_at_random() -> None:
    config = route(1, 1, sticky=True)
    rng = random.Random(7)
    chosen = {choose_arm("chest-ab", config, None, rng).model for _ in range(50)}
    assert chosen == {"chest:0.0", "chest:1.0"}


def test_each_endpoint_splits_its_keys_independently() -> None:
    config = route(1, 1, sticky=True)
    keys = pseudonyms(200)
    a = [choose_arm("route-a", config, k, random.Random(0)).model for k in keys]
    b = [choose_arm("route-b", config, k, random.Random(0)).model for k in keys]
    assert a != b


def test_a_single_arm_takes_everything() -> None:
    config = route(3)
    rng = random.Random(3)
    assert {choose_arm("x", config, None, rng).model for _ in range(100)} == {"chest:0.0"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"arms": []}, "arms"),
        ({"arms": [{"model": "chest", "weight": 1}]}, "arms.0.model"),  # no version
        ({"arms": [{"model": "chest:1", "weight": 0}]}, "arms.0.weight"),
        ({"arms": [{"model": "chest:1", "weight": -1}]}, "arms.0.weight"),
        ({"arms": [{"model": "chest:1", "weight": float("nan")}]}, "arms.0.weight"),
        ({"arms": [{"model": "chest:1", "weight": float("inf")}]}, "arms.0.weight"),
        ({"arms": [{"model": "chest:1", "weight": 1}] * 11}, "arms"),
        ({"arms": [{"model": "chest:1", "weight": 1}], "sticky_key": "mrn"}, "sticky_key"),
        ({"arms": [{"model": "chest:1", "weight": 1}], "colour": "red"}, "colour"),
    ],
)
def test_bad_routes_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RouteConfig.model_validate(body)
    fields = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert field in fields, fields


@pytest.mark.parametrize(
    "body",
    [
        {"arms": [{"model": "chest:1", "weight": 1}, {"model": "chest:1", "weight": 2}]},
        {"arms": [{"model": "chest:1", "weight": 1}], "shadow": ["chest:1"]},
        {"arms": [{"model": "chest:1", "weight": 1}], "shadow": ["chest:2", "chest:2"]},
        {"arms": [{"model": "chest:1", "weight": 1}], "shadow": ["chest"]},
    ],
    ids=["repeated-arm", "shadow-is-an-arm", "repeated-shadow", "shadow-unpinned"],
)
def test_inconsistent_routes_are_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        RouteConfig.model_validate(body)
