"""Which model versions a route may name, and which status changes a route forbids.

An arm answers clinicians, so it must be validated (``validation`` or ``production``); a
shadow only runs beside them, so any version not retired may be one. Every version must
belong to a served model, whose replicas load it by hash. While a version is an arm or a
shadow, a promotion or rollback that would retire it is refused: end the experiment (change or
delete the route) first, so a retired version never answers. And a model's replicas
keep ``runtime.max_loaded_versions`` versions loaded: routes may not make a model serve
more at once, or its replicas would reload sessions request after request. The arms and
shadows of one route are of one kind: a mask and a label are no A/B comparison, and an
endpoint's callers expect one shape of answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from serve_app.catalog.routes import RouteConfig, split_ref
from serve_app.catalog.spec import ModelKind
from serve_app.catalog.status import ModelStatus, Version
from serve_app.errors import Conflict, InvalidInput
from serve_app.records.model import StatusChange
from serve_app.schemas.routes import RouteOut

ARM_STATUSES = frozenset({ModelStatus.VALIDATION, ModelStatus.PRODUCTION})
SHADOW_STATUSES = ARM_STATUSES | {ModelStatus.DEVELOPMENT}


def check_route(config: RouteConfig, served: Iterable[str], versions: Sequence[Version]) -> None:
    """Raise unless every arm and shadow names a version ``check_route`` admits."""
    served = set(served)
    status = {f"{v.model_name}:{v.version}": ModelStatus(v.status) for v in versions}
    # NOTE: fields named as the request validator names them (``arms.0.model``).
    named = [(f"arms.{i}.model", arm.model, ARM_STATUSES) for i, arm in enumerate(config.arms)]
    named += [(f"shadow.{i}", ref, SHADOW_STATUSES) for i, ref in enumerate(config.shadow)]
    for field, ref, allowed in named:
        name, _ = split_ref(ref)
        if name not in served:
            raise InvalidInput(f"{ref}: model {name} is not served", field, "served")
        if ref not in status:
            raise InvalidInput(f"{ref} is not registered", field, "registered")
        if status[ref] not in allowed:
            wanted = " or ".join(sorted(allowed))
            raise Conflict(f"{ref} is {status[ref]}; it must be {wanted}", field, "status")


def check_loaded(
    endpoint: str,
    config: RouteConfig,
    routes: Iterable[RouteOut],
    production: Iterable[str],
    max_loaded: int,
) -> None:
    """Raise if, with ``config`` as ``endpoint``'s route, some model would have to keep
    more than ``max_loaded`` versions loaded (its production one and every routed one):
    its replicas would reload a version on every other request."""
    refs = set(production) | set(route_refs(config))
    for route in routes:
        if route.endpoint != endpoint:
            refs |= set(route_refs(route))
    per_model = Counter(split_ref(ref)[0] for ref in refs)
    for name, count in sorted(per_model.items()):
        if count > max_loaded:
            raise Conflict(
                f"routes would serve {count} versions of {name} at once; its replicas keep"
                f" {max_loaded} loaded (runtime.max_loaded_versions)",
                field="arms",
                rule="max-loaded-versions",
            )


def route_refs(route: RouteConfig) -> list[str]:
    """Every ``name:version`` a route sends requests to."""
    return [arm.model for arm in route.arms] + list(route.shadow)


def check_retirements(changes: Iterable[StatusChange], routes: Iterable[RouteOut]) -> None:
    """Raise if ``changes`` retire a version that is still an arm or a shadow of a route."""
    routed: dict[str, str] = {}
    for route in routes:
        routed |= {ref: f"a shadow of route {route.endpoint}" for ref in route.shadow}
        routed |= {arm.model: f"an arm of route {route.endpoint}" for arm in route.arms}
    for change in changes:
        ref = f"{change.model_name}:{change.version}"
        if change.status == ModelStatus.RETIRED and ref in routed:
            raise Conflict(
                f"{ref} is {routed[ref]}; change or delete the route first",
                field="model",
                rule="routed",
            )


def check_one_kind(config: RouteConfig, kind_of: Callable[[str], ModelKind]) -> None:
    """Raise unless every arm and shadow is of the first arm's kind (``kind_of(ref)``)."""
    named = [(f"arms.{i}.model", arm.model) for i, arm in enumerate(config.arms)]
    named += [(f"shadow.{i}", ref) for i, ref in enumerate(config.shadow)]
    first = kind_of(named[0][1])
    for field, ref in named[1:]:
        if (kind := kind_of(ref)) is not first:
            raise InvalidInput(
                f"{ref} is a {kind.value} model; this route's first arm is {first.value}",
                field,
                "kind",
            )
