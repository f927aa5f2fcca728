"""``medai models check FILE`` says what registration then does: a file it passes registers,
a file it refuses is refused with the same rule. Models include the demo models and a
scikit-learn model the test exports itself with skl2onnx, by the README's own script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from medai_cli.main import main
from serve_app.demo_models import DEMO_MODELS
from serve_app.settings import REPO_ROOT
from tests.api.test_registry import register
from tests.unit.onnx_builders import tiny_classifier

pytestmark = pytest.mark.timeout(300)

MEDAI = [sys.executable, "-m", "medai_cli"]


def readme_sklearn_script() -> str:
    """The README's scikit-learn export, as written there."""
    readme = (REPO_ROOT / "README.md").read_text()
    (script,) = re.findall(r"```python\n(# xray_sklearn\.py.*?)```", readme, re.S)
    return script


@pytest.fixture(scope="module")
def sklearn_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The README's export, and the same estimator exported bare (flat features, a label
    output first): what an engineer has before reading the guide."""
    folder = tmp_path_factory.mktemp("sklearn")
    (folder / "xray_sklearn.py").write_text(readme_sklearn_script())
    done = subprocess.run(
        [sys.executable, "xray_sklearn.py"], cwd=folder, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

    import numpy as np
    import onnx
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    features = rng.random((100, 64 * 64), dtype=np.float32)
    classifier = LogisticRegression(max_iter=500).fit(features, features[:, 0] > 0.5)
    bare = to_onnx(classifier, features[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    onnx.save(bare, folder / "xray-raw.onnx")
    return {"readme": folder / "xray-sklearn.onnx", "bare": folder / "xray-raw.onnx"}


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["models", "check", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def refused_rules(report: dict) -> list[str]:
    return [f["rule"] for f in report["findings"] if f["verdict"] == "refused"]


def test_the_readme_sklearn_model_passes_and_registers(
    inprocess_client: httpx.Client,
    engineer: dict[str, str],
    sklearn_models: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = check(sklearn_models["readme"], capsys)

    assert (code, report["registrable"], refused_rules(report)) == (0, True, [])
    assert [f for f in report["findings"] if f["verdict"] == "guessed"] == []
    data = sklearn_models["readme"].read_bytes()
    response = register(inprocess_client, engineer, f"sk-{uuid.uuid4().hex[:8]}", "1.0.0", data)
    assert response.status_code == 201, response.text
    assert response.json()["input_shape"] == [None, 1, 64, 64]


def test_the_bare_sklearn_export_is_refused_with_the_fix(
    inprocess_client: httpx.Client, engineer: dict[str, str], sklearn_models: dict[str, Path]
) -> None:
    done = subprocess.run(
        [*MEDAI, "models", "check", str(sklearn_models["bare"])],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "REFUSED  model-input" in done.stdout
    assert "fix: the model takes flat features (scikit-learn)" in done.stdout
    assert "the registry would refuse it" in done.stdout
    data = sklearn_models["bare"].read_bytes()
    response = register(inprocess_client, engineer, f"sk-{uuid.uuid4().hex[:8]}", "1.0.0", data)
    assert response.status_code == 422
    assert response.json()["errors"][0]["rule"] == "model-input"


CASES = {
    **{demo.name: (demo.build, None) for demo in DEMO_MODELS if not demo.on_demand},
    "ir-14": (lambda: tiny_classifier([None, 1, 64, 64], ir_version=14), "onnx"),
    "fixed-batch-4": (lambda: tiny_classifier([4, 1, 64, 64]), "model-input"),
    "output-fits-no-labels": (
        lambda: tiny_classifier([None, 1, 64, 64], labels=["a", "b", "c"], outputs=2),
        "model-output",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_check_and_registration_agree(
    inprocess_client: httpx.Client,
    engineer: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    build, rule = CASES[case]
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(build())

    code, report = check(path, capsys)
    response = register(
        inprocess_client, engineer, f"chk-{uuid.uuid4().hex[:8]}", "1.0.0", path.read_bytes()
    )

    if rule is None:
        assert (code, refused_rules(report)) == (0, [])
        assert response.status_code == 201, response.text
    else:
        assert code == 1 and refused_rules(report)[0] == rule
        assert all(f["fix"] for f in report["findings"] if f["verdict"] == "refused")
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["rule"] == rule


def test_a_missing_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["models", "check", str(tmp_path / "absent.onnx")]) == 2
    assert "is not a file" in capsys.readouterr().err
