"""Every ``type: ignore`` left in the typed code names its error code and says why."""

from __future__ import annotations

import re

from serve_app.settings import REPO_ROOT

TYPED = ("serve_app", "deployments", "medai_cli")
IGNORE = re.compile(r"#\s*type:\s*ignore")
EXPLAINED = re.compile(r"#\s*type:\s*ignore\[[a-z0-9-]+(,\s*[a-z0-9-]+)*\]\s+#\s*\S")


def unexplained_ignores() -> list[str]:
    found = []
    for package in TYPED:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if IGNORE.search(line) and not EXPLAINED.search(line):
                    found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    return found


def test_every_type_ignore_names_its_code_and_reason() -> None:
    assert not unexplained_ignores()


def test_the_check_catches_a_bare_or_unexplained_ignore() -> None:
    assert not EXPLAINED.search("x = f()  # type: ignore")
    assert not EXPLAINED.search("x = f()  # type: ignore[arg-type]")
    assert EXPLAINED.search("x = f()  # type: ignore[arg-type]  # ray's stub is wrong")
