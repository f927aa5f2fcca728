"""The Locust scenario records a request that got no answer as a failure, not a crash."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from serve_app.settings import REPO_ROOT
from tests.ports import free_port


def test_a_refused_connection_is_a_failure_not_an_exception(
    tmp_path: Path, model_store: Path
) -> None:
    # NOTE: nothing listens on the port: every request fails to connect.
    locust = Path(sys.executable).parent / "locust"
    host = f"http://127.0.0.1:{free_port()}"
    run = ["--headless", "-u", "2", "-r", "2", "-t", "10s", "--only-summary", "--host", host]
    run += ["--csv", str(tmp_path / "run"), "ClinicalClient"]
    subprocess.run(
        [str(locust), "-f", "loadtests/locustfile.py", *run],
        cwd=REPO_ROOT,
        # NOTE: the scenario builds its payloads from the store's models, at their size
        env=os.environ | {"MEDAI_MODEL_STORE": str(model_store)},
        capture_output=True,
        timeout=120,
        check=False,
    )
    with open(tmp_path / "run_exceptions.csv") as f:
        assert list(csv.DictReader(f)) == []
    with open(tmp_path / "run_failures.csv") as f:
        failures = list(csv.DictReader(f))
    assert failures
    assert all("no response: ConnectionRefusedError" in row["Error"] for row in failures)
