"""The core ring imports neither Ray nor FastAPI (STYLE.md, "Three rings")."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import serve_app

BLOCKED = ("ray", "fastapi", "starlette")
PACKAGE = Path(serve_app.__file__).parent


def core_modules() -> list[str]:
    """Every module of ``serve_app`` outside ``serve_app/http``."""
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[1:2] == ("http",):
            continue
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def run_with_blocked_imports(modules: list[str]) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        BLOCKED = {BLOCKED!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in the core ring")
                return None

        sys.meta_path.insert(0, Block())
        for module in {modules!r}:
            importlib.import_module(module)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_core_module_list_is_complete() -> None:
    modules = core_modules()

    assert "serve_app" in modules
    assert {"serve_app.pipeline", "serve_app.backend", "serve_app.codecs.images"} <= set(modules)
    assert {"serve_app.runtime.onnx_model", "serve_app.catalog.store"} <= set(modules)
    assert not any(m.startswith("serve_app.http") for m in modules)


def test_core_imports_with_ray_and_fastapi_blocked() -> None:
    result = run_with_blocked_imports(core_modules())

    assert result.returncode == 0, result.stderr


def test_the_block_works() -> None:
    """The same harness fails on the HTTP ring, which does import FastAPI."""
    result = run_with_blocked_imports(["serve_app.http.app"])

    assert result.returncode != 0
    assert "is blocked in the core ring" in result.stderr
