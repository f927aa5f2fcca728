"""The container image's recipe: linted, non-root, no secret or model baked in, health
checked, on the Ray and project versions pinned. No image is built here (this machine
has no container engine): the recipe is checked statically."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import ray

from serve_app.settings import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
SECRET_WORDS = ("SECRET", "KEY", "PASSWORD", "TOKEN")


def instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.strip().upper().startswith(name + " ")
    ]


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    found = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", "Dockerfile"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stdout + found.stderr


def test_the_image_runs_as_a_numbered_non_root_user() -> None:
    (user,) = instructions("USER")
    uid = user.partition(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_pinned_to_the_ray_and_project_versions() -> None:
    assert f"ARG RAY_IMAGE=rayproject/ray:{ray.__version__}-py311-cpu" in DOCKERFILE
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG VERSION={version}" in DOCKERFILE


def test_no_secret_or_model_in_the_image() -> None:
    for env in instructions("ENV"):
        for name in re.findall(r"([A-Z_]+)=", env):
            assert not any(word in name for word in SECRET_WORDS), name
    copied = " ".join(instructions("COPY"))
    assert "model_store" not in copied and "data" not in copied.split()
    # the build context is an allowlist: data/, model_store/ and .venv never reach it
    rules = [
        line
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = [rule for rule in rules if rule.startswith("!")]
    assert not any(word in rule for rule in allowed for word in ("data", "model_store", "venv"))


def test_the_health_check_asks_the_servers_healthz() -> None:
    (check,) = instructions("HEALTHCHECK")
    assert "http://127.0.0.1:8000/healthz" in check
