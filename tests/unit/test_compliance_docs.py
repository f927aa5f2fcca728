"""Documents in compliance/ that mirror code stay true to it."""

from __future__ import annotations

from serve_app.auth.rbac import GRANTS, Permission, Role
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
