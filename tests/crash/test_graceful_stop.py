"""``medai serve`` stopped by SIGTERM (systemd, ``docker stop``; Ctrl-C is the same) stops
every deployment, not only the ingress: the audit writer's close signs the tail, and no
process of the server is left.

Checkpoints are made rare here, so that only the writer's close can sign the entries the
requests wrote. In the high-throughput mode the ingress replica's drain used to outlast
Serve's wait for its controller, and everything after it was killed instead.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from loadtests.sessions import session_processes
from tests.conftest import TEST_AUTH, TokenFactory
from tests.crash.test_sigkill import MEDAI, Server, write_config
from tests.images import infer_body, pixels
from tests.ports import free_port

pytestmark = [pytest.mark.crash, pytest.mark.timeout(600)]

REQUESTS = 5
STOP_WITHIN_S = 120


@pytest.mark.parametrize("high_throughput", [True, False], ids=["high-throughput", "default"])
def test_sigterm_stops_every_deployment_and_the_writer_signs_its_tail(
    tmp_path: Path, model_store: Path, token_for: TokenFactory, high_throughput: bool
) -> None:
    port = free_port()
    args = {
        "model_store": str(model_store),
        "data_dir": str(tmp_path / "data"),
        "auth": TEST_AUTH,
        "audit": {"checkpoint_every_entries": 100_000, "checkpoint_every_s": 3600.0},
    }
    config = write_config(tmp_path / "serve_config.yaml", port, args)
    server = Server(config, port, tmp_path / "server.log", high_throughput)
    server.start()
    assert server.process is not None
    try:
        headers = {"Authorization": f"Bearer {token_for('clinician')}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            for seed in range(REQUESTS):
                answer = client.post("/infer", json=infer_body(pixels(9000 + seed, 64, 64)))
                assert answer.status_code == 200, answer.text
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=STOP_WITHIN_S)
        took = time.monotonic() - started
    finally:
        if server.process.poll() is None:
            server.kill()
    assert code == 0, f"medai serve exited {code}; see {server.log}"
    deadline = time.monotonic() + 30  # NOTE: Ray's own processes end just after it
    while (left := session_processes(server.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], f"left running: {[p.pid for p in left]}"

    cli = subprocess.run(
        [*MEDAI, "audit", "verify", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    verification = json.loads(cli.stdout)
    assert verification["valid"], verification
    assert verification["entries"] >= REQUESTS
    assert verification["unsigned_entries"] == 0, f"the writer did not close; see {server.log}"
    print(f"stopped in {took:.1f} s; {verification['entries']} entries, all signed")
