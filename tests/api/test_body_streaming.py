"""The body-size limit holds while the body streams in: the server never holds it.

The app runs in its own uvicorn process (as ``loadtests/naive_app.py`` serves it), so
its peak memory can be read before and after a 60 MB chunked upload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.uvicorn_server import uvicorn_server

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
    server_args: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    with uvicorn_server(server_args, tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


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
