"""The model lifecycle as pure functions: the transition table, promotion() and rollback()."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from serve_app.catalog.status import ModelStatus
from serve_app.errors import Conflict, MedAIError, NotFound
from serve_app.records.model import StatusChange
from serve_app.registry.status import promotion, rollback

DEV, VAL, PROD, RET = (
    ModelStatus.DEVELOPMENT,
    ModelStatus.VALIDATION,
    ModelStatus.PRODUCTION,
    ModelStatus.RETIRED,
)
ALLOWED = {(DEV, VAL), (DEV, RET), (VAL, PROD), (VAL, RET), (PROD, RET)}
"""Written out here rather than read from ``PROMOTIONS``, so that a changed table fails."""
REFUSED = sorted(set(itertools.product(ModelStatus, ModelStatus)) - ALLOWED)


@dataclass(frozen=True)
class V:
    model_name: str
    version: str
    status: ModelStatus


def assert_refused(error: MedAIError, kind: type[MedAIError], field: str, rule: str) -> None:
    assert type(error) is kind
    assert (error.field, error.rule) == (field, rule)
    assert error.detail


@pytest.mark.parametrize(("current", "to"), sorted(ALLOWED))
def test_every_allowed_move(current: ModelStatus, to: ModelStatus) -> None:
    versions = [V("chest", "1", current), V("chest", "2", DEV), V("knee", "1", PROD)]
    assert promotion(versions, "chest", "1", to) == [StatusChange("chest", "1", to)]


@pytest.mark.parametrize(("current", "to"), sorted(m for m in ALLOWED if m[1] is not PROD))
def test_moves_short_of_production_leave_production_alone(
    current: ModelStatus, to: ModelStatus
) -> None:
    versions = [V("chest", "1", current), V("chest", "2", PROD)]
    assert promotion(versions, "chest", "1", to) == [StatusChange("chest", "1", to)]


@pytest.mark.parametrize(("current", "to"), REFUSED)
def test_every_other_move_is_refused(current: ModelStatus, to: ModelStatus) -> None:
    versions = [V("chest", "1", current)]
    with pytest.raises(Conflict) as refused:
        promotion(versions, "chest", "1", to)
    assert_refused(refused.value, Conflict, "to", "transition")
    assert str(current) in refused.value.detail


def test_a_retired_version_is_told_to_use_a_rollback() -> None:
    with pytest.raises(Conflict, match="rollback"):
        promotion([V("chest", "1", RET)], "chest", "1", VAL)


def test_to_production_retires_the_production_version_first() -> None:
    versions = [V("chest", "1", PROD), V("chest", "2", VAL), V("knee", "1", PROD)]
    assert promotion(versions, "chest", "2", PROD) == [
        StatusChange("chest", "1", RET),
        StatusChange("chest", "2", PROD),
    ]


def test_another_models_production_version_is_left_alone() -> None:
    versions = [V("knee", "2", PROD), V("chest", "2", VAL)]
    assert promotion(versions, "chest", "2", PROD) == [StatusChange("chest", "2", PROD)]


@pytest.mark.parametrize("current", [RET, VAL])
def test_rollback_serves_the_version_again_and_retires_production(current: ModelStatus) -> None:
    versions = [V("chest", "1", current), V("chest", "2", PROD), V("knee", "1", PROD)]
    assert rollback(versions, "chest", "1") == [
        StatusChange("chest", "2", RET),
        StatusChange("chest", "1", PROD),
    ]


def test_rollback_with_none_in_production_changes_one_version() -> None:
    versions = [V("chest", "1", RET), V("chest", "2", RET)]
    assert rollback(versions, "chest", "1") == [StatusChange("chest", "1", PROD)]


@pytest.mark.parametrize("current", [DEV, PROD])
def test_rollback_to_development_or_production_is_refused(current: ModelStatus) -> None:
    versions = [V("chest", "1", current), V("chest", "2", PROD)]
    with pytest.raises(Conflict) as refused:
        rollback(versions, "chest", "1")
    assert_refused(refused.value, Conflict, "to_version", "transition")


@pytest.mark.parametrize(
    ("name", "version"),
    [("chest", "9"), ("knee", "2"), ("CHEST", "1")],  # a version of another model is not found
)
def test_unknown_versions_are_not_found(name: str, version: str) -> None:
    versions = [V("chest", "1", VAL), V("chest", "2", RET), V("knee", "1", DEV)]
    for move in (
        lambda: promotion(versions, name, version, PROD),
        lambda: rollback(versions, name, version),
    ):
        with pytest.raises(NotFound) as missing:
            move()
        assert_refused(missing.value, NotFound, "model", "registered")
        assert f"{name}:{version}" in missing.value.detail
