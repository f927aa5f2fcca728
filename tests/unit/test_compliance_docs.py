"""Documents in compliance/ that mirror code stay true to it."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from serve_app.auth.rbac import GRANTS, Permission, Role
from serve_app.http.records import build_records_router
from serve_app.http.registry_routes import build_registry_router
from serve_app.http.routing_routes import build_routing_router
from serve_app.settings import REPO_ROOT


def table_rows(markdown: str, first_header: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return [rows[0], *rows[2:]]  # header, then the body (skipping the --- row)


def test_role_matrix_equals_the_role_table() -> None:
    header, *body = table_rows((REPO_ROOT / "compliance" / "roles.md").read_text(), "role")
    assert header[1:] == [p.value for p in Permission]
    documented = {
        Role(row[0]): {Permission(p) for p, mark in zip(header[1:], row[1:], strict=True) if mark}
        for row in body
    }
    assert documented == GRANTS


def required_permissions(route: APIRoute) -> set[str]:
    """What ``security.require`` makes ``route`` ask of its caller."""
    calls = [d.call for d in route.dependant.dependencies]
    return {p.value for call in calls for p in getattr(call, "permissions", ())}


def test_route_table_equals_what_the_routes_require() -> None:
    """The route table of ``compliance/roles.md`` is what the management routes check:
    a permission granted but never required (``routes:manage``, once) shows as drift."""
    routers = [build_registry_router(None), build_routing_router(None), build_records_router(None)]  # type: ignore[arg-type]
    required = {
        f"{method} {route.path}": required_permissions(route)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    _, *body = table_rows((REPO_ROOT / "compliance" / "roles.md").read_text(), "route")
    documented = {
        route: set(re.findall(r"[a-z]+:[a-z-]+|\binfer\b", row[1]))
        for row in body
        for route in re.findall(r"`([A-Z]+ [^`]+)`", row[0])
        if route in required
    }
    assert documented == required
