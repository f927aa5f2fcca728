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
    ADMIN = "admin"
    """Everything."""


class Permission(StrEnum):
    INFER = "infer"
    READ_OWN_RESULTS = "results:read-own"
    READ_ANY_RESULTS = "results:read-any"
    MANAGE_MODELS = "models:manage"
    MANAGE_ROUTES = "routes:manage"
    READ_AUDIT = "audit:read"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.CLINICIAN: frozenset({Permission.INFER, Permission.READ_OWN_RESULTS}),
    Role.ML_ENGINEER: frozenset(
        {Permission.INFER, Permission.MANAGE_MODELS, Permission.MANAGE_ROUTES}
    ),
    Role.AUDITOR: frozenset({Permission.READ_AUDIT}),
    Role.ADMIN: frozenset(Permission),
}


def authorize(principal: Principal, permission: Permission) -> None:
    try:
        granted = GRANTS[Role(principal.role)]
    except ValueError:
        granted = frozenset()  # a role this platform does not know grants nothing
    if permission not in granted:
        raise Forbidden(
            f"role {principal.role!r} may not {permission.value}", field="role", rule="permission"
        )
