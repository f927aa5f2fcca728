"""The Locust scenarios (loadtests/locustfile.py) run headless against the served app, as
a load tester runs them: clinical traffic with an engineer swapping production under it,
and the same inside an A/B experiment, where the engineer moves the route's traffic
between its arms instead. No request fails, the engineer's changes are made, and the run
leaves no route behind."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serve_app.settings import REPO_ROOT
from tests.conftest import TokenFactory

pytestmark = [pytest.mark.serve, pytest.mark.timeout(300)]

MODEL = "chest-xray-demo"
LOCUST = str(Path(sys.executable).parent / "locust")
ENGINEER_REQUEST = {False: "/models/{name}/rollback", True: "/routes/{name}"}


def production(engineer: httpx.Client) -> str:
    listed = engineer.get("/models", params={"name": MODEL}).raise_for_status().json()
    (version,) = [v["version"] for v in listed if v["status"] == "production"]
    return str(version)


@pytest.mark.parametrize("ab", [False, True], ids=["swapping", "a-b"])
def test_clinical_load_with_an_engineer_at_work_fails_no_request(
    served: str, model_store: Path, token_for: TokenFactory, tmp_path: Path, ab: bool
) -> None:
    env = os.environ | {
        "MEDAI_MODEL_STORE": str(model_store),
        "MEDAI_TOKEN": token_for("clinician", sub="locust"),
        "MEDAI_ENGINEER_TOKEN": token_for("ml_engineer", sub="locust-engineer"),
        "MEDAI_LOAD_SWAP_S": "2",
        "MEDAI_LOAD_AB": "1" if ab else "0",
    }
    run = ["--headless", "-u", "5", "-r", "5", "-t", "12s", "--host", served]
    users = ["ClinicalClient", "PromotingEngineer"]
    headers = {"Authorization": f"Bearer {token_for('ml_engineer')}"}
    engineer = httpx.Client(base_url=served, headers=headers, timeout=60)
    before = production(engineer)
    try:
        done = subprocess.run(
            [LOCUST, "-f", "loadtests/locustfile.py", *run, "--csv", str(tmp_path / "l"), *users],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        # NOTE: the session's other tests expect the version that served before
        if production(engineer) != before:
            back = {"to_version": before}
            engineer.post(f"/models/{MODEL}/rollback", json=back).raise_for_status()
        engineer.close()
    with open(tmp_path / "l_stats.csv") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    # the run's preparation (registering the copy), then Locust's summary
    summary = "\n".join(line for line in done.stderr.splitlines() if "/ERROR/" in line)
    summary += "\n" + done.stderr[-3000:]
    assert done.returncode == 0, summary
    assert rows["Aggregated"]["Failure Count"] == "0", summary
    assert int(rows["/infer/file (png)"]["Request Count"]) > 0, summary
    assert int(rows[ENGINEER_REQUEST[ab]]["Request Count"]) >= 3, summary  # every 2 s
    route = httpx.get(f"{served}/routes/{MODEL}", headers=headers, timeout=60)
    assert route.status_code == 404, route.text  # the experiment's route is gone
