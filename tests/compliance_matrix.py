"""The traceability matrix: compliance/traceability.toml, checked and rendered to Markdown.

``python -m tests.compliance_matrix`` checks the matrix and rewrites
compliance/TRACEABILITY.md from it; tests/unit/test_traceability.py fails when a listed
test is gone, a requirement has no test, or the summary drifts from the matrix.
"""

from __future__ import annotations

import ast
import functools
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from serve_app.settings import REPO_ROOT

MATRIX = REPO_ROOT / "compliance" / "traceability.toml"
SUMMARY = REPO_ROOT / "compliance" / "TRACEABILITY.md"
COMMAND = "python -m tests.compliance_matrix"


@dataclass(frozen=True)
class Requirement:
    id: str
    source: str
    text: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class NotTraced:
    """A clause of the regulation this system does not meet by itself, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class Matrix:
    requirements: tuple[Requirement, ...]
    not_traced: tuple[NotTraced, ...]


def one_line(text: str) -> str:
    return " ".join(text.split())


def load(path: Path = MATRIX) -> Matrix:
    # NOTE: a missing or unknown key raises here (KeyError, TypeError), so a typo such
    # as `test = [...]` cannot leave a requirement silently untested.
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return Matrix(
        tuple(
            Requirement(**entry | {"text": one_line(entry["text"]), "tests": tuple(entry["tests"])})
            for entry in data["requirement"]
        ),
        tuple(
            NotTraced(**entry | {"reason": one_line(entry["reason"])})
            for entry in data.get("not_traced", [])
        ),
    )


@functools.cache
def defined_tests(path: Path) -> frozenset[str]:
    """Names of the test functions defined at module level in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    )


def node_id_problem(node_id: str) -> str | None:
    """Why ``node_id`` names no test function, or None when it names one."""
    file, sep, name = node_id.partition("::")
    if not sep or "::" in name or "[" in name:
        return "is not `tests/…/test_*.py::test_name` (no class, no parameters)"
    path = REPO_ROOT / file
    if not file.startswith("tests/") or not path.is_file():
        return f"names a file that does not exist under tests/: {file}"
    if name not in defined_tests(path):
        return f"names no module-level test function in {file}"
    return None


def missing_tests(matrix: Matrix) -> list[str]:
    return [
        f"{requirement.id}: {node_id} {problem}"
        for requirement in matrix.requirements
        for node_id in requirement.tests
        if (problem := node_id_problem(node_id))
    ]


def untested(matrix: Matrix) -> list[str]:
    return [requirement.id for requirement in matrix.requirements if not requirement.tests]


def duplicate_ids(matrix: Matrix) -> list[str]:
    counts = Counter(requirement.id for requirement in matrix.requirements)
    return sorted(id_ for id_, count in counts.items() if count > 1)


def problems(matrix: Matrix) -> list[str]:
    return [
        *missing_tests(matrix),
        *(f"{id_}: lists no test" for id_ in untested(matrix)),
        *(f"{id_}: id used more than once" for id_ in duplicate_ids(matrix)),
    ]


def cell(text: str) -> str:
    return text.replace("|", r"\|")


def tests_cell(tests: tuple[str, ...]) -> str:
    by_file: dict[str, list[str]] = {}
    for node_id in tests:
        file, _, name = node_id.partition("::")
        by_file.setdefault(file, []).append(name)
    files = "; ".join(
        f"`{file}`: " + ", ".join(f"`{name}`" for name in names) for file, names in by_file.items()
    )
    return f"{len(tests)} — {files}"


def render(matrix: Matrix) -> str:
    references = sum(len(r.tests) for r in matrix.requirements)
    distinct = len({node_id for r in matrix.requirements for node_id in r.tests})
    lines = [
        "# Traceability matrix",
        "",
        f"Generated from `traceability.toml` by `{COMMAND}`; edit that file, not this one.",
        "",
        f"{len(matrix.requirements)} requirements, {references} test references"
        f" ({distinct} distinct tests). Each requirement names the pytest node ids that show it;"
        " `tests/unit/test_traceability.py` fails when one of them no longer exists.",
        "",
        "| id | source | requirement | tests |",
        "|---|---|---|---|",
        *(
            f"| {r.id} | {r.source} | {cell(r.text)} | {tests_cell(r.tests)} |"
            for r in matrix.requirements
        ),
    ]
    if matrix.not_traced:
        lines += [
            "",
            "## Not traced to tests",
            "",
            "| source | why |",
            "|---|---|",
            *(f"| {n.source} | {cell(n.reason)} |" for n in matrix.not_traced),
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    matrix = load()
    if found := problems(matrix):
        print(f"{MATRIX.relative_to(REPO_ROOT)} has problems:", *found, sep="\n  ", file=sys.stderr)
        return 1
    SUMMARY.write_text(render(matrix), encoding="utf-8")
    print(f"wrote {SUMMARY.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
