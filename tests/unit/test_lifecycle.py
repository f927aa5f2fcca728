from __future__ import annotations

import itertools

import pytest

from serve_app.runtime.lifecycle import TRANSITIONS, IllegalTransition, Lifecycle, ModelState

REGISTERED, LOADING, READY, DRAINING, RETIRED, FAILED = (
    ModelState.REGISTERED,
    ModelState.LOADING,
    ModelState.READY,
    ModelState.DRAINING,
    ModelState.RETIRED,
    ModelState.FAILED,
)
LEGAL = [
    (REGISTERED, LOADING),
    (LOADING, READY),
    (LOADING, FAILED),
    (READY, DRAINING),
    (DRAINING, RETIRED),
    (FAILED, LOADING),
]
"""The spec (compliance/TRACEABILITY.md CFR-11.10(f)-1, README "Lifecycle"): registered ->
loading -> ready -> draining -> retired, or loading -> failed, and a failed model may load
again. Written out here rather than read from ``TRANSITIONS``, so that a changed table fails."""
ILLEGAL = sorted(set(itertools.product(ModelState, repeat=2)) - set(LEGAL))

# The shortest legal path from REGISTERED to each state.
PATH_TO = {
    ModelState.REGISTERED: [],
    ModelState.LOADING: [ModelState.LOADING],
    ModelState.READY: [ModelState.LOADING, ModelState.READY],
    ModelState.FAILED: [ModelState.LOADING, ModelState.FAILED],
    ModelState.DRAINING: [ModelState.LOADING, ModelState.READY, ModelState.DRAINING],
    ModelState.RETIRED: [
        ModelState.LOADING,
        ModelState.READY,
        ModelState.DRAINING,
        ModelState.RETIRED,
    ],
}


def lifecycle_in(state: ModelState) -> Lifecycle:
    lifecycle = Lifecycle()
    for step in PATH_TO[state]:
        lifecycle.transition(step)
    assert lifecycle.state is state
    return lifecycle


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(ModelState)
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == set(LEGAL)
    assert set(PATH_TO) == set(ModelState)


def test_a_new_lifecycle_is_registered_and_not_ready() -> None:
    lifecycle = Lifecycle()

    assert lifecycle.state is ModelState.REGISTERED
    assert not lifecycle.ready


@pytest.mark.parametrize(
    ("source", "target"), LEGAL, ids=[f"{a.value}->{b.value}" for a, b in LEGAL]
)
def test_legal_transition(source: ModelState, target: ModelState) -> None:
    lifecycle = lifecycle_in(source)

    lifecycle.transition(target)

    assert lifecycle.state is target


@pytest.mark.parametrize(
    ("source", "target"), ILLEGAL, ids=[f"{a.value}->{b.value}" for a, b in ILLEGAL]
)
def test_illegal_transition_raises_and_keeps_the_state(
    source: ModelState, target: ModelState
) -> None:
    lifecycle = lifecycle_in(source)

    with pytest.raises(IllegalTransition, match=f"{source.value} -> {target.value}"):
        lifecycle.transition(target)

    assert lifecycle.state is source


def test_there_are_legal_and_illegal_pairs() -> None:
    assert len(LEGAL) == 6
    assert len(LEGAL) + len(ILLEGAL) == len(ModelState) ** 2


@pytest.mark.parametrize("state", list(ModelState), ids=[s.value for s in ModelState])
def test_ready_only_in_ready(state: ModelState) -> None:
    assert lifecycle_in(state).ready is (state is ModelState.READY)


def test_retired_is_terminal() -> None:
    assert TRANSITIONS[ModelState.RETIRED] == frozenset()


def test_failed_model_can_be_loaded_again() -> None:
    lifecycle = lifecycle_in(ModelState.FAILED)

    lifecycle.transition(ModelState.LOADING)
    lifecycle.transition(ModelState.READY)

    assert lifecycle.ready
