"""Nothing acknowledged is lost: SIGKILL the whole server under load, restart, check.

The server is ``medai serve`` (its own Ray instance, the app from serve_config.yaml) in a
process session of its own; every process of that session is SIGKILLed at once while
clients are mid-request. After a restart on the same database and checkpoint file,
every inference that was answered 200 must be stored, audited, and the chain must verify.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from loadtests.sessions import kill_session, session_processes
from serve_app.settings import REPO_ROOT
from tests.conftest import TEST_AUTH, TokenFactory
from tests.crash.kept import assert_kept
from tests.images import infer_body, pixels
from tests.ports import free_port

pytestmark = [pytest.mark.crash, pytest.mark.timeout(600)]

# NOTE: the `medai` console script as a module: an installed script names the entry point
# of the checkout it was installed from, which need not be the one under test.
MEDAI = [sys.executable, "-m", "medai_cli"]
CLIENTS = 8
ACKNOWLEDGED_BEFORE_KILL = 150


def write_config(path: Path, port: int, args: dict[str, Any]) -> Path:
    config = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    config["http_options"]["port"] = port
    for app in config["applications"]:
        app["args"] = {**app.get("args", {}), **args}
    path.write_text(yaml.safe_dump(config))
    return path


class Server:
    """``medai serve --config ...`` in a new process session, killable as a whole."""

    def __init__(self, config: Path, port: int, log: Path, high_throughput: bool = False) -> None:
        self.config, self.base_url, self.log = config, f"http://127.0.0.1:{port}", log
        self.high_throughput = high_throughput
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 240) -> None:
        mode = "--high-throughput" if self.high_throughput else "--no-high-throughput"
        command = [*MEDAI, "serve", mode, "--config", str(self.config)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=out, stderr=out, start_new_session=True
            )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited; see {self.log}"
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        pytest.fail(f"server not ready within {ready_timeout_s}s; see {self.log}")

    def session_processes(self) -> list[psutil.Process]:
        assert self.process is not None
        return session_processes(self.process.pid)  # start_new_session: pid is the sid

    def kill(self) -> None:
        """SIGKILL every process of the server's session (Ray's GCS, raylet, replicas)."""
        assert self.process is not None
        survivors = kill_session(self.process.pid)
        self.process.wait(timeout=10)
        assert not survivors, "processes survived SIGKILL"


@pytest.fixture
def server(tmp_path: Path, database_url: str, model_store: Path) -> Iterator[Server]:
    port = free_port()
    args = {
        "model_store": str(model_store),
        "data_dir": str(tmp_path / "data"),
        "auth": TEST_AUTH,
        "storage": {"database_url": database_url},
        # Checkpoint often, so that the restart is held to signed checkpoints too.
        "audit": {"checkpoint_every_entries": 50, "checkpoint_every_s": 1.0},
    }
    config = write_config(tmp_path / "serve_config.yaml", port, args)
    server = Server(config, port, tmp_path / "server.log")
    try:
        yield server
    finally:
        if server.process is not None:
            server.kill()


def load(base_url: str, token: str, stop: threading.Event, acknowledged: list[str]) -> None:
    """One client: distinct images, back to back, until ``stop`` or the server dies."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
        seed = threading.get_ident() % 10_000 * 1000
        while not stop.is_set():
            seed += 1
            try:
                response = client.post("/infer", json=infer_body(pixels(seed, 64, 64)))
            except httpx.HTTPError:
                continue  # in flight when the server died: never acknowledged
            if response.status_code == 200:
                acknowledged.append(response.json()["inference_id"])


def test_sigkill_under_load_loses_no_acknowledged_inference(
    server: Server, token_for: TokenFactory
) -> None:
    server.start()
    acknowledged: list[str] = []
    stop = threading.Event()
    clients = [
        threading.Thread(
            target=load, args=(server.base_url, token_for("clinician"), stop, acknowledged)
        )
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < ACKNOWLEDGED_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # clients are still sending
    stop.set()
    for client in clients:
        client.join(timeout=60)
    answered = set(acknowledged)
    assert len(answered) >= ACKNOWLEDGED_BEFORE_KILL, f"only {len(answered)} answered"

    server.start()
    auditor = {"Authorization": f"Bearer {token_for('auditor')}"}
    with httpx.Client(base_url=server.base_url, timeout=60, headers=auditor) as client:
        audited = assert_kept(client, answered)
        verification = client.get("/audit/verify").json()
    assert verification["valid"], verification
    assert verification["checkpoint_seq"] is not None, "no signed checkpoint was checked"

    cli = subprocess.run(
        [*MEDAI, "audit", "verify", "--config", str(server.config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    print(
        f"acknowledged {len(answered)} before SIGKILL; "
        f"{len(audited)} inferences audited after restart; {verification['entries']} entries"
    )
