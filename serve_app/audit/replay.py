"""What the trail says should serve: its registry and route entries replayed.

The ``model_versions`` and ``routes`` tables decide which versions answer clinicians,
and each change to them is committed with its audit entry. Someone with write access to
the database could still edit a table alone (set a development version to production,
add a route): replaying the entries and comparing catches that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from serve_app.audit.chain import Linked
from serve_app.audit.events import AuditAction
from serve_app.canonical import normalized

MODEL_ACTIONS = frozenset(
    {AuditAction.MODEL_REGISTER, AuditAction.MODEL_PROMOTE, AuditAction.MODEL_ROLLBACK}
)
REPLAYED = sorted(MODEL_ACTIONS | {AuditAction.ROUTE_CHANGE})
"""The actions whose entries say what the tables hold."""


@dataclass
class TrailState:
    versions: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """``name:version`` to (status, SHA-256) as the entries left them."""
    routes: dict[str, Any] = field(default_factory=dict)
    """Endpoint to route config as the entries left them."""

    def feed(self, entries: Iterable[Linked]) -> None:
        for entry in entries:
            if entry.action in MODEL_ACTIONS:
                self._model(entry)
            elif entry.action == AuditAction.ROUTE_CHANGE:
                self._route(entry)

    def _model(self, entry: Linked) -> None:
        details = entry.details if isinstance(entry.details, Mapping) else {}
        ref = str(entry.object_id)
        sha256 = details.get("sha256") if entry.action == AuditAction.MODEL_REGISTER else None
        known = self.versions.get(ref)
        self.versions[ref] = (
            str(details.get("status")),
            sha256 if sha256 is not None or known is None else known[1],
        )

    def _route(self, entry: Linked) -> None:
        details = dict(entry.details) if isinstance(entry.details, Mapping) else {}
        if details == {"deleted": True}:
            self.routes.pop(str(entry.object_id), None)
        else:
            self.routes[str(entry.object_id)] = details


def disagreement(
    state: TrailState,
    versions: Mapping[str, tuple[str, str]],
    routes: Mapping[str, Any],
) -> str | None:
    """How the tables (``versions`` as ref to (status, hash), ``routes`` as endpoint to
    config) differ from what the trail says, or ``None``."""
    for ref in sorted(versions.keys() | state.versions.keys()):
        if ref not in state.versions:
            return f"model version {ref} is in model_versions but no audit entry registered it"
        if ref not in versions:
            return f"model version {ref} was registered in the trail but is not in model_versions"
        status, sha256 = versions[ref]
        trail_status, trail_sha256 = state.versions[ref]
        if status != trail_status:
            return (
                f"model version {ref} is {status} in model_versions but {trail_status} in the trail"
            )
        if trail_sha256 is not None and sha256 != trail_sha256:
            return f"model version {ref}'s file hash in model_versions differs from the trail's"
    for endpoint in sorted(routes.keys() | state.routes.keys()):
        if endpoint not in state.routes:
            return f"route {endpoint} is in routes but no audit entry set it"
        if endpoint not in routes:
            return f"route {endpoint} was set in the trail but is not in routes"
        if normalized(routes[endpoint]) != normalized(state.routes[endpoint]):
            return f"route {endpoint} in routes differs from the trail's last change to it"
    return None
