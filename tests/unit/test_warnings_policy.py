"""pytest's warning filters (pyproject.toml): our own code's warnings fail the test."""

from __future__ import annotations

import warnings

import pytest


def warn_from(module: str, category: type[Warning]) -> list[warnings.WarningMessage]:
    """Warnings seen when ``module`` warns, under the filters this test runs with."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit("a warning", category, "file.py", 1, module=module)
    return seen


@pytest.mark.parametrize(
    "module", ["serve_app.pipeline", "deployments.app", "medai_cli.main", "tests.unit.x"]
)
@pytest.mark.parametrize("category", [UserWarning, DeprecationWarning, RuntimeWarning])
def test_a_warning_from_our_code_is_an_error(module: str, category: type[Warning]) -> None:
    with pytest.raises(category):
        warn_from(module, category)


def test_a_third_party_deprecation_stays_quiet() -> None:
    assert warn_from("pydicom.valuerep", DeprecationWarning) == []


def test_a_module_merely_named_like_ours_is_not_ours() -> None:
    assert len(warn_from("serve_apps_fork", UserWarning)) == 1
