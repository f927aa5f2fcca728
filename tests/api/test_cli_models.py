"""``medai models register|list|promote|rollback`` and ``medai routes set|show|stats|delete``
against a running server (uvicorn)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.api.test_body_streaming import uvicorn_app  # noqa: F401  (the server)
from tests.conftest import TokenFactory
from tests.images import infer_body, pixels
from tests.serve.test_hot_swap import MODEL, variant
from tests.unit.onnx_builders import tiny_classifier

pytestmark = pytest.mark.timeout(180)

# NOTE: the `medai` console script as a module: an installed script names the entry point
# of the checkout it was installed from, which need not be the one under test.
MEDAI = [sys.executable, "-m", "medai_cli"]


def medai(
    base_url: str, token: str, *args: str, group: str = "models"
) -> subprocess.CompletedProcess[str]:
    command = [*MEDAI, group, *args, "--url", base_url, "--token", token]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_register_promote_and_roll_back_from_the_shell(
    uvicorn_app: tuple[str, int],  # noqa: F811
    token_for: TokenFactory,
    tmp_path: Path,
) -> None:
    base_url, _ = uvicorn_app
    engineer = token_for("ml_engineer", sub="cli-engineer")
    name = f"cli-{uuid.uuid4().hex[:8]}"
    files = {}
    for version, seed_shape in (("1.0", 64), ("2.0", 96)):
        path = tmp_path / f"{version}.onnx"
        path.write_bytes(tiny_classifier([None, 1, seed_shape, seed_shape]))
        files[version] = path
        done = medai(base_url, engineer, "register", str(path), "--name", name,
                     "--version", version, "--clinical-domain", "radiology")  # fmt: skip
        assert done.returncode == 0, done.stderr
        registered = json.loads(done.stdout)
        assert registered["file_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert registered["status"] == "development"

    for version in ("1.0", "2.0"):
        for status in ("validation", "production"):
            done = medai(base_url, engineer, "promote", name, version, "--to", status)
            assert done.returncode == 0, done.stderr
    done = medai(base_url, engineer, "rollback", name, "--to", "1.0")
    assert done.returncode == 0, done.stderr
    listed = json.loads(medai(base_url, engineer, "list", "--name", name).stdout)
    assert {v["version"]: v["status"] for v in listed} == {"1.0": "production", "2.0": "retired"}


def test_refusals_exit_non_zero_with_the_problem(
    uvicorn_app: tuple[str, int],  # noqa: F811
    token_for: TokenFactory,
    tmp_path: Path,
) -> None:
    base_url, _ = uvicorn_app
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(b"not a model at all")
    done = medai(base_url, token_for("ml_engineer"), "register", str(garbage),
                 "--name", "cli-garbage", "--version", "1")  # fmt: skip
    assert done.returncode == 1
    assert "422" in done.stderr and "ONNX" in done.stderr

    done = medai(base_url, token_for("clinician"), "list")
    assert done.returncode == 1 and "403" in done.stderr

    done = medai("http://127.0.0.1:9", token_for("ml_engineer"), "list")
    assert done.returncode == 2 and "did not answer" in done.stderr


def test_an_a_b_route_from_the_shell(
    uvicorn_app: tuple[str, int],  # noqa: F811
    token_for: TokenFactory,
    model_store: Path,
    tmp_path: Path,
) -> None:
    base_url, _ = uvicorn_app
    engineer = token_for("ml_engineer", sub="cli-engineer")
    refs = []
    for i in range(3):
        version = f"cli-ab-{uuid.uuid4().hex[:8]}"
        path = tmp_path / f"{version}.onnx"
        path.write_bytes(variant(model_store, threshold=0.4 + i / 10, tag=version))
        done = medai(base_url, engineer, "register", str(path), "--name", MODEL,
                     "--version", version)  # fmt: skip
        assert done.returncode == 0, done.stderr
        if i < 2:
            done = medai(base_url, engineer, "promote", MODEL, version, "--to", "validation")
            assert done.returncode == 0, done.stderr
        refs.append(f"{MODEL}:{version}")
    endpoint = f"cli-ab-{uuid.uuid4().hex[:8]}"

    def routes(*args: str) -> subprocess.CompletedProcess[str]:
        return medai(base_url, engineer, *args, group="routes")

    done = routes("set", endpoint, "--arm", f"{refs[0]}=3", "--arm", f"{refs[1]}=1",
                  "--shadow", refs[2], "--sticky-key", "patient_id")  # fmt: skip
    assert done.returncode == 0, done.stderr
    route = json.loads(done.stdout)
    assert route["arms"] == [{"model": refs[0], "weight": 3.0}, {"model": refs[1], "weight": 1.0}]
    assert (route["shadow"], route["sticky_key"]) == ([refs[2]], "patient_id")
    assert json.loads(routes("show", endpoint).stdout) == route

    headers = {"Authorization": f"Bearer {token_for('clinician')}"}
    body = infer_body(pixels(3, 64, 64), model=endpoint, patient_id="MRN-CLI-1")
    answer = httpx.post(f"{base_url}/infer", json=body, headers=headers, timeout=60).json()
    assert answer["arm"] in refs[:2]
    stats = json.loads(routes("stats", endpoint).stdout)
    assert [(a["model"], a["count"]) for a in stats["arms"]] == [(answer["arm"], 1)]

    assert routes("delete", endpoint).returncode == 0
    gone = routes("show", endpoint)
    assert gone.returncode == 1 and "404" in gone.stderr
    bad = routes("set", endpoint, "--arm", f"{refs[0]}=heavy")
    assert bad.returncode == 2 and "name:version=weight" in bad.stderr
