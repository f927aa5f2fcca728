"""The body-size limit holds while the body streams in: the server never holds it.

The app runs in its own uvicorn process (as ``loadtests/naive_app.py`` serves it), so
its peak memory can be read before and after a 60 MB chunked upload.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TokenFactory
from tests.ports import free_port

pytestmark = pytest.mark.timeout(120)

MIB = 1024 * 1024
BODY_MIB = 60
BOUNDARY = "medai-stream"


def multipart_headers() -> dict[str, str]:
    return {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def streamed_upload(total: int, chunk: int = MIB) -> Iterator[bytes]:
    """A chunked multipart upload: no Content-Length, so only counting while it streams
    in can stop it."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.dcm"\r\n'
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()
    for start in range(0, total, chunk):
        yield b"0" * min(chunk, total - start)


def peak_rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
def uvicorn_app(
    server_args: dict, token_for: TokenFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    port = free_port()
    own = tmp_path_factory.mktemp("uvicorn")  # its own database: one writer per trail
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
    server = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning"], env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
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


def test_a_60_mb_streamed_body_is_413_and_never_held(
    uvicorn_app: tuple[str, int], clinician: dict[str, str]
) -> None:
    base_url, pid = uvicorn_app
    with httpx.Client(base_url=base_url, timeout=60, headers=clinician) as client:
        peak_before = peak_rss_bytes(pid)
        response = client.post(
            "/infer/file", content=streamed_upload(BODY_MIB * MIB), headers=multipart_headers()
        )
        grown = peak_rss_bytes(pid) - peak_before

        assert response.status_code == 413, response.text
        assert response.json()["errors"][0] == {
            "field": "body",
            "rule": "max-size",
            "message": f"request body exceeds {50 * MIB} bytes",
        }
        # Holding the body would raise the peak by at least its 60 MB.
        assert grown < 16 * MIB, f"peak RSS grew by {grown / MIB:.1f} MiB"
        assert client.get("/readyz").status_code == 200
