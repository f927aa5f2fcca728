"""The README's configuration, API table and status line stay true to the code."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import BaseModel
from starlette.routing import Route

from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_local_app
from serve_app.settings import REPO_ROOT, Settings


def env_names(model: type[BaseModel], prefix: str = "MEDAI_") -> Iterator[str]:
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from env_names(field.annotation, f"{prefix}{name.upper()}__")
        else:
            yield prefix + name.upper()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [name for name in env_names(Settings) if f"`{name}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"


def test_every_setting_has_a_description() -> None:
    def undocumented(model: type[BaseModel]) -> Iterator[str]:
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from undocumented(field.annotation)
            elif not field.description:
                yield f"{model.__name__}.{name}"

    assert not list(undocumented(Settings))


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make test" in readme and "\nmake test\n" in ci


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next one."""
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def table_cells(text: str, first: str) -> Iterator[list[str]]:
    """The cells of each table row whose first cell starts with ``first``."""
    for line in text.splitlines():
        if line.startswith(f"| {first}"):
            yield [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_every_setting_row_is_a_setting_with_its_args_key() -> None:
    names = set(env_names(Settings))
    rows = list(table_cells(section("Configuration"), "`MEDAI_"))

    assert len(rows) >= len(names) // 2  # the table was found
    for cells in rows:
        env, key = cells[0].strip("`"), cells[1].strip("`")
        assert env in names, f"README configuration table names {env}, which is no setting"
        assert key == env.removeprefix("MEDAI_").lower().replace("__", "."), cells


def readme_operations() -> set[tuple[str, str]]:
    """``(METHOD, /path)`` of every row of the README's API table (query strings dropped)."""
    operations = set()
    for cells in table_cells(section("API"), "`"):
        for method, path in re.findall(r"`([A-Z]+) (/[^`?]*)[^`]*`", cells[0]):
            operations.add((method, path))
    return operations


def app_operations(settings: Settings, credentials: Credentials) -> tuple[set, set]:
    """The app's API operations (from its OpenAPI schema, which lists every API route of
    ours), and those plus the pages served beside it (FastAPI's docs, the console)."""
    app = create_local_app(settings, credentials)
    api = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    pages = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.methods
        for method in route.methods - {"HEAD"}
    }
    return api, api | pages


def test_the_api_table_is_every_route_and_only_routes(
    settings: Settings, credentials: Credentials
) -> None:
    api, every = app_operations(settings, credentials)
    documented = readme_operations()

    assert {("POST", "/infer"), ("DELETE", "/routes/{endpoint}")} <= api  # the app was read
    assert api - documented == set(), "routes missing from the README's API table"
    assert documented - every == set(), "README API rows that are no route"


SHIPPED = {
    "model registry": ("POST", "/models"),
    "A/B routing": ("PUT", "/routes/{endpoint}"),
    "audit trail": ("GET", "/audit/verify"),
    "readiness": ("GET", "/readyz"),
}
"""Features the status line must list as in place, each with a route that proves it."""


def status_line() -> tuple[str, str]:
    """The README's status paragraph: what it says is in place, and the rest."""
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("> **Status.**")
    paragraph = " ".join(
        line.removeprefix(">").strip() for line in readme[start:].split("\n\n", 1)[0].splitlines()
    )
    cuts = [i for mark in ("Under way:", "Not yet:") if (i := paragraph.find(mark)) != -1]
    cut = min(cuts, default=len(paragraph))
    return paragraph[:cut], paragraph[cut:]


def test_the_status_line_lists_what_the_code_has_as_in_place(
    settings: Settings, credentials: Credentials
) -> None:
    api, _ = app_operations(settings, credentials)
    in_place, later = status_line()

    assert in_place.startswith("**Status.** In place:"), in_place
    for feature, operation in SHIPPED.items():
        assert operation in api, f"{feature}: {operation} is no route; fix SHIPPED"
        assert feature in in_place, f"the status line does not list {feature} as in place"
        assert feature not in later, f"the status line lists {feature} as not done"
