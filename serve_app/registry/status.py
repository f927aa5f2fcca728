"""The regulatory lifecycle of a model version, as a transition table.

``development → validation → production → retired``. Promoting a version to production
retires the one it replaces; only a rollback brings a retired version back.
"""

from __future__ import annotations

from collections.abc import Sequence

from serve_app.catalog.status import ModelStatus, Version
from serve_app.errors import Conflict, NotFound
from serve_app.records.model import StatusChange

PROMOTIONS: dict[ModelStatus, frozenset[ModelStatus]] = {
    ModelStatus.DEVELOPMENT: frozenset({ModelStatus.VALIDATION, ModelStatus.RETIRED}),
    ModelStatus.VALIDATION: frozenset({ModelStatus.PRODUCTION, ModelStatus.RETIRED}),
    ModelStatus.PRODUCTION: frozenset({ModelStatus.RETIRED}),
    ModelStatus.RETIRED: frozenset(),
}
ROLLBACK_FROM = frozenset({ModelStatus.VALIDATION, ModelStatus.RETIRED})


def find(versions: Sequence[Version], name: str, version: str) -> Version:
    for v in versions:
        if v.model_name == name and v.version == version:
            return v
    raise NotFound(f"model {name}:{version} is not registered", field="model", rule="registered")


def _retire_production(versions: Sequence[Version], name: str) -> list[StatusChange]:
    return [
        StatusChange(name, v.version, ModelStatus.RETIRED)
        for v in versions
        if v.model_name == name and ModelStatus(v.status) is ModelStatus.PRODUCTION
    ]


def promotion(
    versions: Sequence[Version], name: str, version: str, to: ModelStatus
) -> list[StatusChange]:
    """The status changes that move ``name:version`` to ``to``, in the order to apply them."""
    current = ModelStatus(find(versions, name, version).status)
    if to not in PROMOTIONS[current]:
        allowed = ", ".join(sorted(PROMOTIONS[current])) or "nothing (use a rollback)"
        raise Conflict(
            f"{name}:{version} is {current}; it may move to {allowed}",
            field="to",
            rule="transition",
        )
    retired = _retire_production(versions, name) if to is ModelStatus.PRODUCTION else []
    return [*retired, StatusChange(name, version, to)]


def rollback(versions: Sequence[Version], name: str, to_version: str) -> list[StatusChange]:
    """Serve ``to_version`` (validated or retired) again, retiring the production version."""
    current = ModelStatus(find(versions, name, to_version).status)
    if current not in ROLLBACK_FROM:
        raise Conflict(
            f"{name}:{to_version} is {current}; a rollback returns to a validated or retired"
            " version",
            field="to_version",
            rule="transition",
        )
    return [
        *_retire_production(versions, name),
        StatusChange(name, to_version, ModelStatus.PRODUCTION),
    ]
