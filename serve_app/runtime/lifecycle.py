"""A served model's lifecycle inside one replica, as an explicit state machine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ModelState(StrEnum):
    REGISTERED = "registered"
    """Known to the catalog, not loaded."""
    LOADING = "loading"
    """Verifying the file's hash and building the session."""
    READY = "ready"
    """Serving requests."""
    DRAINING = "draining"
    """Finishing in-flight requests before release."""
    RETIRED = "retired"
    """Released; will not serve again."""
    FAILED = "failed"
    """Could not load (bad hash, unloadable file); the previous version keeps serving."""


TRANSITIONS: dict[ModelState, frozenset[ModelState]] = {
    ModelState.REGISTERED: frozenset({ModelState.LOADING}),
    ModelState.LOADING: frozenset({ModelState.READY, ModelState.FAILED}),
    ModelState.READY: frozenset({ModelState.DRAINING}),
    ModelState.DRAINING: frozenset({ModelState.RETIRED}),
    ModelState.RETIRED: frozenset(),
    ModelState.FAILED: frozenset({ModelState.LOADING}),
}


class IllegalTransition(RuntimeError):
    pass


class Lifecycle:
    def __init__(self) -> None:
        self.state = ModelState.REGISTERED

    def transition(self, target: ModelState) -> None:
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state.value} -> {target.value} is not allowed")
        self.state = target

    @property
    def ready(self) -> bool:
        return self.state is ModelState.READY


@dataclass(frozen=True)
class RunnerStatus:
    """What a model runner tells readiness: its state, and the ONNX Runtime execution
    provider its serving version runs on (``CUDAExecutionProvider``, ...)."""

    state: ModelState
    execution_provider: str | None = None
