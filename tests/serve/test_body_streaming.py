"""A body over the limit is refused while it streams in, and serving continues.

Our middleware never holds the body (tests/api/test_body_streaming.py proves it on
uvicorn). Behind Ray Serve 2.60 the replica's own receive proxy drains the whole body
into a queue before the app reads it, so the ingress replica's memory does grow with a
streamed body; this test reports by how much (see README, "Hostile input").
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.test_body_streaming import BODY_MIB, MIB, multipart_headers, streamed_upload
from tests.images import infer_body, pixels

pytestmark = [pytest.mark.serve, pytest.mark.timeout(180)]


def cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # it ended meanwhile
        return []


def ingress_peak_rss_bytes() -> int:
    """Peak resident memory (VmHWM) of the ingress replica's process.

    Ray titles each replica's process ``ray::ServeReplica:<app>:<deployment>``. Only this
    session's: the Ray instance this test process started runs below it (another one on
    the machine has an ingress too).
    """
    (pid,) = [
        p.pid
        for p in psutil.Process().children(recursive=True)
        if any("ServeReplica:medai:Ingress" in part for part in cmdline(p))
    ]
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_a_60_mb_streamed_body_is_413_and_serving_continues(
    served: str, clinician: dict[str, str]
) -> None:
    with httpx.Client(base_url=served, timeout=60, headers=clinician) as client:
        assert client.post("/infer", json=infer_body(pixels(3, 64, 64))).status_code == 200
        peak_before = ingress_peak_rss_bytes()
        started = time.monotonic()
        response = client.post(
            "/infer/file", content=streamed_upload(BODY_MIB * MIB), headers=multipart_headers()
        )
        elapsed = time.monotonic() - started
        grown = (ingress_peak_rss_bytes() - peak_before) / MIB
        print(
            f"{BODY_MIB} MB streamed body: 413 after {elapsed:.2f}s, ingress peak +{grown:.0f} MiB"
        )

        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["rule"] == "max-size"
        assert client.post("/infer", json=infer_body(pixels(4, 64, 64))).status_code == 200
