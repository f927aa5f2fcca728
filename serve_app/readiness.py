"""Readiness: every component the service needs, each asked with a deadline.

A component is a deployment (``Ingress``, ``Preprocessor``, ``Registry``, ``AuditWriter``)
or a served model's runner (``model-<name>``, its deployment's name). Reasons are short
and written here, never an exception's text: ``/readyz`` is unauthenticated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from serve_app.errors import ServiceUnavailable
from serve_app.runtime.lifecycle import ModelState, RunnerStatus

READY = "ready"


@dataclass(frozen=True)
class Component:
    name: str
    ready: bool
    reason: str = READY
    execution_provider: str | None = None
    """A model runner's: where its serving version runs."""


def model_component(name: str) -> str:
    """The component (the deployment's name) of a served model's runner."""
    return f"model-{name}"


async def probe(
    name: str, check: Callable[[], Awaitable[str | None]], timeout_s: float
) -> Component:
    """Run ``check`` for at most ``timeout_s``; a failure is a reason, never raised."""
    try:
        problem = await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return Component(name, False, f"no answer within {timeout_s:g} s")
    except ServiceUnavailable:
        return Component(name, False, "unavailable")
    except Exception as failure:  # a dead replica, a lost connection, a bug: named, not shown
        return Component(name, False, f"unavailable ({type(failure).__name__})")
    return Component(name, problem is None, problem or READY)


def model_components(
    statuses: Mapping[str, RunnerStatus], served: Iterable[str]
) -> list[Component]:
    """One component per served model: ready when its runner reports ``ready``."""
    components = []
    for name in served:
        status = statuses.get(name)
        if status is None:
            components.append(Component(model_component(name), False, "no state reported"))
            continue
        ready = status.state is ModelState.READY
        reason = READY if ready else f"model is {status.state.value}"
        components.append(
            Component(model_component(name), ready, reason, status.execution_provider)
        )
    return components


def expect(components: Iterable[Component], names: Iterable[str]) -> list[Component]:
    """``components`` with each expected one that did not report added as not ready."""
    reported = list(components)
    seen = {c.name for c in reported}
    return reported + [Component(n, False, "not reported") for n in names if n not in seen]
