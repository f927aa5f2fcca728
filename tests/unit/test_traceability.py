"""The traceability matrix in compliance/ names tests that exist, and its summary is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import compliance_matrix
from tests.compliance_matrix import COMMAND, SUMMARY, Matrix, Requirement, load, render


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load()


def test_every_listed_test_exists(matrix: Matrix) -> None:
    assert not compliance_matrix.missing_tests(matrix)


def test_every_requirement_has_a_test(matrix: Matrix) -> None:
    assert matrix.requirements
    assert not compliance_matrix.untested(matrix)


def test_requirement_ids_are_unique(matrix: Matrix) -> None:
    assert not compliance_matrix.duplicate_ids(matrix)


def test_summary_is_generated_from_the_matrix(matrix: Matrix) -> None:
    assert SUMMARY.read_text(encoding="utf-8") == render(matrix), (
        f"{SUMMARY.name} is out of date: run `{COMMAND}`"
    )


@pytest.mark.parametrize(
    ("node_id", "problem"),
    [
        ("tests/unit/test_traceability.py::test_every_listed_test_exists", None),
        ("tests/unit/test_traceability.py::test_no_such_test", "names no module-level"),
        ("tests/unit/test_traceability.py::matrix", "names no module-level"),
        ("tests/unit/test_absent.py::test_x", "does not exist"),
        ("serve_app/settings.py::test_x", "does not exist under tests/"),
        ("tests/unit/test_traceability.py", "is not"),
        ("tests/unit/test_traceability.py::test_every_listed_test_exists[x]", "is not"),
        ("tests/storage/test_audit_writer.py::Clock::advance", "is not"),
    ],
)
def test_node_ids_resolve_to_module_level_test_functions(node_id: str, problem: str | None) -> None:
    found = compliance_matrix.node_id_problem(node_id)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_broken_matrix_is_reported() -> None:
    broken = Matrix(
        (
            Requirement("X-1", "design", "a", ("tests/unit/test_absent.py::test_x",)),
            Requirement("X-1", "design", "b", ()),
        ),
        (),
    )
    assert compliance_matrix.problems(broken) == [
        "X-1: tests/unit/test_absent.py::test_x names a file that does not exist"
        " under tests/: tests/unit/test_absent.py",
        "X-1: lists no test",
        "X-1: id used more than once",
    ]


def test_a_misspelt_key_is_an_error_not_an_untested_requirement(tmp_path: Path) -> None:
    path = tmp_path / "traceability.toml"
    path.write_text('[[requirement]]\nid = "X-1"\nsource = "design"\ntext = "a"\ntest = []\n')
    with pytest.raises(KeyError):
        load(path)
