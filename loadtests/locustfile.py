"""Locust load test for a running MedAI Flow server (see loadtests/README.md).

    locust -f loadtests/locustfile.py --headless -u 32 -r 8 -t 60s --host http://127.0.0.1:8000

The target model comes from ``MEDAI_LOAD_MODEL`` (default chest-xray-demo);
``MEDAI_TOKEN`` is sent as the bearer token; unset, a clinician token is minted with
this machine's secret (as ``medai token`` does). Payloads are built once,
at the model's own size, from the local model store.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, between, task

from loadtests.payloads import batch_body, image_for, json_body, multipart_body
from medai_cli.common import config_settings, local_token
from serve_app.catalog.store import ModelStore
from serve_app.settings import REPO_ROOT

MODEL = os.environ.get("MEDAI_LOAD_MODEL", "chest-xray-demo")
SETTINGS = config_settings(REPO_ROOT / "serve_config.yaml")
SPEC = ModelStore(SETTINGS.model_store).resolve(MODEL)
BODIES = {
    "/infer": json_body(image_for(SPEC, seed=1), MODEL),
    "/infer/file": multipart_body(image_for(SPEC, seed=2), MODEL),
    "/infer/batch": batch_body([image_for(SPEC, seed=s) for s in range(3, 7)], MODEL),
}
TOKEN = os.environ.get("MEDAI_TOKEN") or local_token(SETTINGS, "locust", "clinician", 12 * 3600)


def failure_text(status: int, text: str | None, error: object) -> str:
    """What a failed request is recorded as: its status and body's start, or, when no
    answer came (a refused or reset connection: status 0, no body), the error's type."""
    if not status:
        return f"no response: {type(error).__name__ if error else 'connection failed'}"
    return f"{status}: {(text or '')[:200]}"


class ClinicalClient(FastHttpUser):
    """A client sending images: mostly file uploads, some JSON and batches."""

    wait_time = between(0.0, 0.05)

    def _send(self, method: str, path: str) -> None:
        body, content_type = BODIES.get(path, (None, None))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if content_type:
            headers["Content-Type"] = content_type
        with self.client.request(
            method, path, data=body, headers=headers, name=path, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(failure_text(response.status_code, response.text, response.error))

    @task(6)
    def upload_file(self) -> None:
        self._send("POST", "/infer/file")

    @task(2)
    def json_pixels(self) -> None:
        self._send("POST", "/infer")

    @task(1)
    def batch(self) -> None:
        self._send("POST", "/infer/batch")

    @task(1)
    def ready(self) -> None:
        self._send("GET", "/readyz")
