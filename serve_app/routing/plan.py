"""What answers a request: each served model's production version, and the A/B routes.

The registry makes the plan; every preprocessor follows it. Resolving a request's
``model`` against it is pure: a routed endpoint picks an arm (sticky by the patient's
pseudonym when the route says so), a plain name takes the production version, and a
pinned ``name:version`` takes exactly that version when it answers clinicians: the
production version, or an arm of a route. A version that is only a route's shadow is
unvalidated: it runs on copies of requests (``shadow=True``), never as an answer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from serve_app.catalog.spec import ModelSpec
from serve_app.errors import NotFound
from serve_app.routing.ab import choose_arm
from serve_app.schemas.routes import RouteOut


@dataclass(frozen=True)
class Target:
    """The version that answers one request, and the route that chose it (if one did)."""

    spec: ModelSpec
    endpoint: str | None = None
    arm: str | None = None
    shadows: tuple[str, ...] = ()
    """``name:version``s that get a copy of the request; their answers are never returned."""


@dataclass(frozen=True)
class ServingPlan:
    models: Mapping[str, ModelSpec]
    """Served model name to the version it answers with (production)."""
    routes: Mapping[str, RouteOut] = field(default_factory=dict)
    """Endpoint to route; an endpoint may be a served model's name, overriding it."""
    routed: Mapping[str, ModelSpec] = field(default_factory=dict)
    """Spec of every ``name:version`` the routes name."""

    def target(self, ref: str, key: str | None, rng: random.Random, shadow: bool = False) -> Target:
        """What answers ``ref`` (``name`` or ``name:version``) for a request keyed ``key``;
        ``shadow``: for a route's shadow copy, which may also run a shadow version."""
        name, _, version = ref.partition(":")
        if not version and (route := self.routes.get(name)) is not None:
            arm = choose_arm(name, route, key, rng)
            return Target(self.routed[arm.model], name, arm.model, tuple(route.shadow))
        spec = self.models.get(name)
        if spec is not None and version in ("", spec.version):
            return Target(spec)
        if (pinned := self.routed.get(ref)) is not None and (shadow or ref in self.arms):
            return Target(pinned)
        # NOTE: one answer for every version that does not answer clinicians, whether
        # unknown, a shadow or retired; and never the production version: a caller who may
        # infer learns nothing of the catalog from a 404.
        what = ref if version else name
        raise NotFound(f"model {what} is not served", field="model", rule="served")

    def describe(self, ref: str) -> ModelSpec:
        """The version whose tensors a request for ``ref`` takes and gives (a route's first
        arm: its arms are meant to be alike); ``NotFound`` as ``target`` says."""
        name, _, version = ref.partition(":")
        if not version and (route := self.routes.get(name)) is not None:
            return self.routed[route.arms[0].model]
        return self.target(ref, None, random.Random(), shadow=False).spec

    @property
    def arms(self) -> frozenset[str]:
        """Every ``name:version`` that is an arm of a route: it answers clinicians."""
        return frozenset(arm.model for route in self.routes.values() for arm in route.arms)
