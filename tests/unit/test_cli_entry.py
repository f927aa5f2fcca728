"""The installed ``medai`` script runs the CLI package's ``main``."""

from __future__ import annotations

import importlib
import tomllib

from medai_cli.main import main
from serve_app.settings import REPO_ROOT


def test_the_medai_script_names_the_cli_main() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    module, _, function = pyproject["project"]["scripts"]["medai"].partition(":")

    assert getattr(importlib.import_module(module), function) is main
