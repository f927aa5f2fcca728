"""Roles and what each may do: the one role table (``compliance/roles.md`` mirrors it)."""

from __future__ import annotations

from enum import StrEnum

from serve_app.auth.tokens import Principal
from serve_app.errors import Forbidden


class Role(StrEnum):
    CLINICIAN = "clinician"
    """Runs inference and reads their own results."""
    ML_ENGINEER = "ml_engineer"
    """Manages models and routes; runs inference."""
    AUDITOR = "auditor"
    """Reads and verifies the audit trail."""
    MONITOR = "monitor"
    """Reads ``/metrics`` (a Prometheus scraper's token): nothing else."""
    ADMIN = "admin"
    """Everything."""


class Permission(StrEnum):
    INFER = "infer"
    READ_OWN_RESULTS = "results:read-own"
    READ_ANY_RESULTS = "results:read-any"
    MANAGE_MODELS = "models:manage"
    MANAGE_ROUTES = "routes:manage"
    READ_AUDIT = "audit:read"
    READ_METRICS = "metrics:read"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.CLINICIAN: frozenset({Permission.INFER, Permission.READ_OWN_RESULTS}),
    Role.ML_ENGINEER: frozenset(
        {Permission.INFER, Permission.MANAGE_MODELS, Permission.MANAGE_ROUTES}
    ),
    Role.AUDITOR: frozenset({Permission.READ_AUDIT, Permission.READ_ANY_RESULTS}),
    Role.MONITOR: frozenset({Permission.READ_METRICS}),
    Role.ADMIN: frozenset(Permission),
}


def granted(principal: Principal, permission: Permission) -> bool:
    try:
        return permission in GRANTS[Role(principal.role)]
    except ValueError:
        return False  # a role this platform does not know grants nothing


def authorize(principal: Principal, *permissions: Permission) -> None:
    """Pass when the principal holds at least one of ``permissions``; 403 otherwise."""
    if not any(granted(principal, p) for p in permissions):
        wanted = " or ".join(p.value for p in permissions)
        raise Forbidden(
            f"role {principal.role!r} may not {wanted}", field="role", rule="permission"
        )
