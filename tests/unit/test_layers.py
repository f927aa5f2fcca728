"""Imports point down the layers, and only the outer rings import Ray or FastAPI.

Every module of ``serve_app/``, ``deployments/`` and ``medai_cli/`` is parsed, and every
import counts: at the top, inside functions, under ``if TYPE_CHECKING:``. A module may
import its own unit (a package of ``serve_app``, a module of ``medai_cli``, or
``deployments``) and units of lower layers; units sharing a layer are independent. The
README's "Layers" paragraph says the same in words.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from serve_app.settings import REPO_ROOT

LAYERS: tuple[tuple[str, ...], ...] = (
    # Base: import nothing of ours.
    (
        "serve_app",
        "serve_app.errors",
        "serve_app.settings",
        "serve_app.child_env",
        "serve_app.logs",
        "serve_app.canonical",
        "serve_app.ratelimit",
        "serve_app.demo_models",
    ),
    # Wire formats to numpy, and who may call: the base alone.
    ("serve_app.codecs", "serve_app.auth"),
    # Shared types: model specs and status, the model store, routes; stored records.
    ("serve_app.catalog", "serve_app.records"),
    # Wire shapes of the API.
    ("serve_app.schemas",),
    # Leaf services: arm choice and the serving plan, ONNX Runtime, the tables, tensors;
    # a job, one image as accepted.
    (
        "serve_app.routing",
        "serve_app.runtime",
        "serve_app.storage",
        "serve_app.preprocessing",
        "serve_app.job",
    ),
    # The hash chain, its checkpoints and writer, over the tables.
    ("serve_app.audit",),
    # Registering and moving model versions and routes, each change audited; shadow
    # copies, each result audited; a stored result as a DICOM SEG or SR.
    ("serve_app.registry", "serve_app.shadows", "serve_app.dicom_results"),
    # One request's path through the models; what /readyz asks.
    ("serve_app.pipeline", "serve_app.readiness"),
    ("serve_app.backend",),
    # The FastAPI ring.
    ("serve_app.http",),
    # The Ray ring.
    ("deployments",),
    # The command line, outermost.
    ("medai_cli", "medai_cli.common"),
    # What `medai infer` reads and writes: files by content, the CSV, SVG charts.
    ("medai_cli.files", "medai_cli.results", "medai_cli.charts"),
    ("medai_cli.summary",),
    ("medai_cli.models", "medai_cli.check", "medai_cli.infer"),
    ("medai_cli.main",),
    ("medai_cli.__main__",),
)
ROOTS = ("serve_app", "deployments", "medai_cli")
RAY = ("ray",)
RAY_ALLOWED = ("deployments", "medai_cli")
ASGI = ("fastapi", "starlette")
ASGI_ALLOWED = ("serve_app.http", "deployments")

RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


@dataclass(frozen=True)
class Import:
    path: str
    line: int
    source: str
    """The importing module."""
    target: str
    """The imported module (``a.b`` of ``from a.b import c``, or ``a.b.c`` if c is one)."""


def unit(module: str) -> str:
    """The layered unit a module belongs to."""
    parts = module.split(".")
    return parts[0] if parts[0] == "deployments" else ".".join(parts[:2])


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every module of our packages, by name."""
    found = {}
    for package in ROOTS:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def imports(module: str, source: str, path: str, known: Iterable[str]) -> Iterator[Import]:
    """Every import in ``source``, wherever it stands."""
    known = set(known)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    nodes = sorted(
        (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import | ast.ImportFrom)),
        key=lambda n: n.lineno,
    )
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, module, alias.name)
        else:
            base = node.module or ""
            if node.level:  # relative: from the importing module's package up
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(path, node.lineno, module, sub if sub in known else base)


def all_imports(root: Path = REPO_ROOT) -> list[Import]:
    found = modules(root)
    return [
        i
        for name, path in found.items()
        for i in imports(name, path.read_text(), str(path.relative_to(root)), found)
    ]


def _top(module: str) -> str:
    return module.split(".")[0]


def layer_violations(found: Iterable[Import]) -> list[str]:
    """An import up a layer, or across to a peer of the same layer."""
    problems = []
    for i in found:
        if _top(i.target) not in ROOTS:
            continue
        source, target = unit(i.source), unit(i.target)
        if source == target or source not in RANK or target not in RANK:
            continue  # a unit in no layer fails test_every_unit_is_in_a_layer
        if RANK[target] > RANK[source]:
            problems.append(
                f"{i.path}:{i.line}: {source} (layer {RANK[source]}) imports {i.target}"
                f" of {target} (layer {RANK[target]}), a higher layer"
            )
        elif RANK[target] == RANK[source]:
            problems.append(
                f"{i.path}:{i.line}: {source} imports {i.target} of its peer {target}"
                f" (both layer {RANK[source]}); peers are independent"
            )
    return problems


def ring_violations(found: Iterable[Import]) -> list[str]:
    """Ray outside ``deployments`` and the CLI; FastAPI or Starlette outside the HTTP ring."""
    problems = []
    for i in found:
        top = _top(i.target)
        for blocked, allowed in ((RAY, RAY_ALLOWED), (ASGI, ASGI_ALLOWED)):
            if top in blocked and not {unit(i.source), _top(i.source)} & set(allowed):
                problems.append(
                    f"{i.path}:{i.line}: {i.source} imports {i.target}; only"
                    f" {', '.join(allowed)} may import {'/'.join(blocked)}"
                )
    return problems


def test_every_unit_is_in_a_layer() -> None:
    names = modules()

    assert {"serve_app.catalog.spec", "serve_app.http.app", "deployments.app"} <= set(names)
    assert {"medai_cli.main", "medai_cli.__main__"} <= set(names)
    assert sorted({unit(m) for m in names} - set(RANK)) == []


def test_imports_only_point_down_the_layers() -> None:
    assert layer_violations(all_imports()) == []


def test_ray_and_fastapi_stay_in_their_rings() -> None:
    assert ring_violations(all_imports()) == []


def readme_layers() -> list[list[str]]:
    """The README's "Layers" paragraph: the backquoted names between each ``→``."""
    readme = (REPO_ROOT / "README.md").read_text()
    paragraph = readme.split("- **Layers.**", 1)[1].split("\n- **", 1)[0]
    return [re.findall(r"`([a-z_]+)`", tier) for tier in paragraph.split("→")]


def test_the_readme_states_the_same_layers() -> None:
    """Named without the ``serve_app.`` prefix; the CLI's modules as one ``medai_cli``."""
    expected: list[list[str]] = []
    for units in LAYERS:
        names = [u.removeprefix("serve_app.").split(".")[0] for u in units if u != "serve_app"]
        names = list(dict.fromkeys(names))
        if expected[-1:] != [names]:
            expected.append(names)

    assert readme_layers() == expected


HOSTILE = """
from typing import TYPE_CHECKING

from serve_app.errors import MedAIError
from . import plan

if TYPE_CHECKING:
    from serve_app.registry.registry import ModelRegistry


def late() -> None:
    import fastapi
    from ray import serve
    from serve_app import http
"""


def test_the_checks_catch_imports_wherever_they_stand() -> None:
    known = {"serve_app.routing.plan", "serve_app.http"}
    found = list(imports("serve_app.routing.ab", HOSTILE, "ab.py", known))

    assert layer_violations(found) == [
        "ab.py:8: serve_app.routing (layer 4) imports serve_app.registry.registry"
        " of serve_app.registry (layer 6), a higher layer",
        "ab.py:14: serve_app.routing (layer 4) imports serve_app.http"
        " of serve_app.http (layer 9), a higher layer",
    ]
    assert ring_violations(found) == [
        "ab.py:12: serve_app.routing.ab imports fastapi; only serve_app.http, deployments"
        " may import fastapi/starlette",
        "ab.py:13: serve_app.routing.ab imports ray; only deployments, medai_cli may import ray",
    ]


def test_peers_are_independent() -> None:
    found = [Import("plan.py", 1, "serve_app.routing.plan", "serve_app.runtime.batch")]

    assert layer_violations(found) == [
        "plan.py:1: serve_app.routing imports serve_app.runtime.batch of its peer"
        " serve_app.runtime (both layer 4); peers are independent"
    ]


# The import-time check: what the modules pull in, third-party code included, which the
# parse above cannot see. The core is every module of ``serve_app`` outside ``http``.
CORE_BLOCKED = (*RAY, *ASGI)


def core_modules() -> list[str]:
    return [m for m in modules() if _top(m) == "serve_app" and unit(m) != "serve_app.http"]


def run_with_blocked_imports(names: list[str]) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        BLOCKED = {CORE_BLOCKED!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in the core ring")
                return None

        sys.meta_path.insert(0, Block())
        for module in {names!r}:
            importlib.import_module(module)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_the_core_imports_with_ray_and_fastapi_blocked() -> None:
    names = core_modules()
    assert {"serve_app", "serve_app.pipeline", "serve_app.catalog.store"} <= set(names)

    result = run_with_blocked_imports(names)

    assert result.returncode == 0, result.stderr


def test_the_block_works() -> None:
    """The same harness fails on the HTTP ring, which does import FastAPI."""
    result = run_with_blocked_imports(["serve_app.http.app"])

    assert result.returncode != 0
    assert "is blocked in the core ring" in result.stderr
