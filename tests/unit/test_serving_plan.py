"""The serving plan: what answers a request by name, pinned version or routed endpoint;
which versions a route admits; per-arm statistics."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from serve_app.catalog.routes import RouteConfig
from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.status import ModelStatus
from serve_app.errors import Conflict, InvalidInput, NotFound
from serve_app.records.model import StatusChange
from serve_app.routing.admission import check_loaded, check_retirements, check_route
from serve_app.routing.plan import ServingPlan
from serve_app.routing.stats import summarize
from serve_app.runtime.examine import inspect_model
from serve_app.schemas.routes import RouteOut
from tests.unit.onnx_builders import tiny_classifier
from tests.unit.test_ab_routing import REQUESTS, assert_within_3_sigma, pseudonyms

FILE = tiny_classifier([None, 1, 64, 64])


def spec(name: str, version: str) -> ModelSpec:
    return inspect_model(FILE, name, version)


def route(
    arms: dict[str, float], shadow: tuple[str, ...] = (), sticky: bool = False
) -> RouteConfig:
    return RouteConfig(
        arms=[{"model": m, "weight": w} for m, w in arms.items()],
        shadow=list(shadow),
        sticky_key="patient_id" if sticky else None,
    )


def stored(endpoint: str, arms: dict[str, float], shadow: tuple[str, ...] = ()) -> RouteOut:
    config = route(arms, shadow).model_dump(mode="json")
    return RouteOut.stored(endpoint, config, "eng", datetime.now(UTC))


def plan(**routes: RouteConfig) -> ServingPlan:
    refs = {"chest:1", "chest:2", "chest:3", "derm:5"}
    return ServingPlan(
        models={"chest": spec("chest", "1"), "derm": spec("derm", "4")},
        routes=routes,
        routed={ref: spec(*ref.split(":")) for ref in refs},
    )


def test_an_unrouted_name_takes_the_production_version() -> None:
    target = plan().target("derm", None, random.Random(0))
    assert (target.spec.ref, target.endpoint, target.arm, target.shadows) == (
        "derm:4",
        None,
        None,
        (),
    )


def test_a_routed_endpoint_follows_its_weights_and_names_its_arm_and_shadows() -> None:
    config = route({"chest:1": 3, "chest:2": 1}, shadow=("chest:3",))
    serving, rng = plan(**{"chest-ab": config}), random.Random(5)

    targets = [serving.target("chest-ab", None, rng) for _ in range(REQUESTS)]

    assert all(t.spec.ref == t.arm and t.endpoint == "chest-ab" for t in targets)
    assert {t.shadows for t in targets} == {("chest:3",)}
    assert_within_3_sigma(Counter(t.arm for t in targets), config, REQUESTS)


def test_a_route_on_a_served_name_overrides_its_production_version() -> None:
    serving = plan(chest=route({"chest:2": 1}))
    assert serving.target("chest", None, random.Random(0)).spec.ref == "chest:2"
    # A pinned request still gets exactly what it pinned.
    assert serving.target("chest:1", None, random.Random(0)).arm is None


def test_a_sticky_endpoint_keeps_each_patient_on_one_arm() -> None:
    serving = plan(ep=route({"chest:1": 1, "chest:2": 1}, sticky=True))
    rng = random.Random(3)
    for key in pseudonyms(50):
        assert len({serving.target("ep", key, rng).arm for _ in range(10)}) == 1
    arms = {serving.target("ep", key, rng).arm for key in pseudonyms(50)}
    assert arms == {"chest:1", "chest:2"}


@pytest.mark.parametrize("ref", ["chest:3", "derm:5"])
def test_an_arm_of_a_route_may_be_pinned(ref: str) -> None:
    serving = plan(ep=route({"chest:3": 1}), other=route({"derm:5": 1}))
    target = serving.target(ref, None, random.Random(0))
    assert (target.spec.ref, target.arm) == (ref, None)


@pytest.mark.parametrize("ref", ["chest:3", "derm:5"])
def test_a_version_only_a_shadow_answers_copies_never_a_pin(ref: str) -> None:
    """Finding 6: a development shadow is unvalidated; pinned, it would answer clinicians."""
    serving = plan(
        ep=route({"chest:1": 1}, shadow=("chest:3",)), x=route({"chest:2": 1}, ("derm:5",))
    )
    with pytest.raises(NotFound) as info:
        serving.target(ref, None, random.Random(0))
    assert (info.value.field, info.value.rule) == ("model", "served")
    assert info.value.detail == f"model {ref} is not served"
    assert serving.target(ref, None, random.Random(0), shadow=True).spec.ref == ref


def test_a_version_no_route_names_any_more_is_not_pinned() -> None:
    with pytest.raises(NotFound):
        plan().target("chest:3", None, random.Random(0))


@pytest.mark.parametrize("ref", ["chest:9", "absent", "absent:1", "ep"])
def test_what_no_plan_serves_is_not_found(ref: str) -> None:
    with pytest.raises(NotFound) as info:
        plan().target(ref, None, random.Random(0))
    assert (info.value.field, info.value.rule) == ("model", "served")


@dataclass
class V:
    model_name: str
    version: str
    status: ModelStatus


VERSIONS = [
    V("chest", "1", ModelStatus.PRODUCTION),
    V("chest", "2", ModelStatus.VALIDATION),
    V("chest", "3", ModelStatus.DEVELOPMENT),
    V("chest", "0", ModelStatus.RETIRED),
]


def test_a_route_of_validated_arms_and_a_development_shadow_is_admitted() -> None:
    check_route(route({"chest:1": 1, "chest:2": 1}, shadow=("chest:3",)), {"chest"}, VERSIONS)


@pytest.mark.parametrize(
    ("config", "error", "field", "rule"),
    [
        (route({"derm:1": 1}), InvalidInput, "arms.0.model", "served"),
        (route({"chest:1": 1, "chest:7": 1}), InvalidInput, "arms.1.model", "registered"),
        (route({"chest:3": 1}), Conflict, "arms.0.model", "status"),
        (route({"chest:0": 1}), Conflict, "arms.0.model", "status"),
        (route({"chest:1": 1}, shadow=("chest:0",)), Conflict, "shadow.0", "status"),
        (route({"chest:1": 1}, shadow=("chest:8",)), InvalidInput, "shadow.0", "registered"),
    ],
)
def test_routes_naming_what_may_not_serve_are_refused(
    config: RouteConfig, error: type, field: str, rule: str
) -> None:
    with pytest.raises(error) as info:
        check_route(config, {"chest"}, VERSIONS)
    assert (info.value.field, info.value.rule) == (field, rule)


def test_retiring_an_arm_or_a_shadow_is_refused() -> None:
    routed = stored("ep", {"chest:1": 1}, shadow=("chest:3",))
    for version, role in (("1", "an arm"), ("3", "a shadow")):
        with pytest.raises(Conflict) as info:
            check_retirements([StatusChange("chest", version, "retired")], [routed])
        assert info.value.rule == "routed" and f"{role} of route ep" in info.value.detail
    check_retirements([StatusChange("chest", "2", "retired")], [routed])
    check_retirements([StatusChange("chest", "1", "production")], [routed])


@dataclass
class Row:
    inference_id: str
    arm: str | None
    latency_ms: float
    positive: bool | None
    shadow_of: str | None = None
    findings: dict[str, Any] | None = None  # a classifier's

    @property
    def prediction(self) -> str:
        return "yes" if self.positive else "no"


def test_stats_count_each_arm_with_its_latency_and_positive_rate_and_shadows_apart() -> None:
    rows = [Row(f"a{ms}", "chest:1", float(ms), ms % 4 == 0) for ms in range(1, 101)]
    rows += [Row("b", "chest:2", 7.0, None)]
    # Copies of a1 (no), a4 (yes), a8 (yes), and of an answer not read (agreement skips it).
    rows += [Row(f"s{i}", "chest:3", 3.0, True, shadow_of=of)
             for i, of in enumerate(["a1", "a4", "a8", "gone"])]  # fmt: skip

    stats = summarize("ep", rows)

    assert stats.results == 105
    first, second = stats.arms
    assert (first.model, first.count, first.positive_rate) == ("chest:1", 100, 0.25)
    assert first.latency_ms.p50 == pytest.approx(50.5)
    assert first.latency_ms.p99 == pytest.approx(99.01)
    assert (second.model, second.count, second.positive_rate) == ("chest:2", 1, None)
    assert first.agreement is None
    (shadow,) = stats.shadows
    assert (shadow.model, shadow.count, shadow.positive_rate) == ("chest:3", 4, 1.0)
    assert shadow.agreement == pytest.approx(2 / 3, abs=1e-6)


def test_routes_may_not_make_a_model_serve_more_versions_than_its_replicas_keep() -> None:
    other = stored("other", {"chest:2": 1}, shadow=("chest:3",))
    production = ["chest:1", "derm:4"]
    # chest:1 (production), chest:2 and chest:3 (the other route), chest:4: four.
    check_loaded("ep", route({"chest:4": 1, "derm:5": 1}), [other], production, 4)
    # The endpoint's own old route is replaced, not added to.
    check_loaded("other", route({"chest:4": 1, "chest:5": 1}), [other], production, 4)
    with pytest.raises(Conflict) as info:
        check_loaded("ep", route({"chest:4": 1, "chest:5": 1}), [other], production, 4)
    assert (info.value.field, info.value.rule) == ("arms", "max-loaded-versions")
    assert "5 versions of chest" in info.value.detail
