"""The in-process app (as ``loadtests/naive_app.py`` builds it) in a uvicorn process of its
own, over real HTTP: for tests that need a real server, a real client or the process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.ports import free_port

READY_WITHIN_S = 60


@contextmanager
def uvicorn_server(
    server_args: dict[str, Any],
    own: Path,
    log: IO[bytes] | None = None,
    log_level: str = "warning",
) -> Iterator[tuple[str, int]]:
    """Yield the server's base URL and pid; its database and checkpoints in ``own`` (one
    writer per trail); its stdout and stderr to ``log`` when given."""
    port = free_port()
    env = {
        **os.environ,
        "MEDAI_MODEL_STORE": server_args["model_store"],
        "MEDAI_DATA_DIR": server_args["data_dir"],
        "MEDAI_AUTH__ISSUER": server_args["auth"]["issuer"],
        "MEDAI_AUTH__AUDIENCE": server_args["auth"]["audience"],
        "MEDAI_STORAGE__DATABASE_URL": f"sqlite://{own / 'medai.sqlite3'}",
        "MEDAI_AUDIT__CHECKPOINT_FILE": str(own / "checkpoints.jsonl"),
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "loadtests.naive_app:app"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", log_level],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("uvicorn did not become ready")
        yield base_url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
