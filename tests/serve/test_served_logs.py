"""Behind Ray Serve, replicas log JSON lines with the request id, and nothing that identifies."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import TokenFactory
from tests.images import infer_body, pixels

pytestmark = [pytest.mark.serve, pytest.mark.timeout(180)]

PATIENT = "MRN-7781-JOHN-ROE"


def ray_log_files() -> list[Path]:
    import ray._private.worker

    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    return [p for p in logs.rglob("*") if p.is_file()]


def test_replica_logs_are_json_with_request_ids_and_no_phi(
    served: str, token_for: TokenFactory
) -> None:
    token = token_for("clinician", sub="log-checker")
    rid = f"log-check-{uuid.uuid4().hex}"
    headers = {"authorization": f"Bearer {token}", "x-request-id": rid}
    body = infer_body(pixels(9, 64, 64), patient_id=PATIENT)
    response = httpx.post(f"{served}/infer", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == rid

    ours: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and {r.get("message") for r in ours} < {
        "request",
        "inference",
    }:
        time.sleep(1)
        ours = [
            json.loads(line[line.index("{") :])
            for path in ray_log_files()
            for line in path.read_text(errors="replace").splitlines()
            if rid in line and "{" in line
        ]
    request = next(r for r in ours if r["message"] == "request")
    assert (request["path"], request["status"], request["user"]) == ("/infer", 200, "log-checker")
    inference = next(r for r in ours if r["message"] == "inference")
    assert str(inference["patient"]).startswith("pt_")
    for path in ray_log_files():
        text = path.read_text(errors="replace")
        assert PATIENT not in text, path
        assert token not in text, path
