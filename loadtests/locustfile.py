"""Locust scenarios for a running MedAI Flow server, as its users load it (see
loadtests/README.md).

    locust -f loadtests/locustfile.py --headless -u 32 -r 8 -t 60s --host http://127.0.0.1:8000
    locust -f loadtests/locustfile.py ... ClinicalClient      # one kind of user only

- ``ClinicalClient``: clinical traffic: PNG and DICOM uploads, JSON pixels, batches, and
  reading back its own results.
- ``PromotingEngineer``: an ML engineer swapping the served version under that traffic:
  registers a copy of the model, then makes it and the original production by turns
  (the registry's rollback), every ``MEDAI_LOAD_SWAP_S`` seconds (default 10).
- ``MEDAI_LOAD_AB=1``: an A/B experiment: the model's name is routed half to the copy for
  the run (and the route removed after), so every clinical request goes through routing;
  the engineer then moves most of the traffic to one arm and the other by turns instead
  of swapping production (an arm cannot be retired while its route stands).
- ``MEDAI_LOAD_STEPS="2:20,32:40,2:40"``: users over time (users:seconds, in turn) instead
  of ``-u``/``-t``, for watching autoscaling (``loadtests/autoscale.py``).

The target model comes from ``MEDAI_LOAD_MODEL`` (default chest-xray-demo). Tokens come
from ``MEDAI_TOKEN`` (clinician) and ``MEDAI_ENGINEER_TOKEN``; unset, they are minted with
this machine's secret (as ``medai token`` does). Payloads are built once, at the model's
own size, from the local model store. A request that gets no answer is a failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from locust import FastHttpUser, LoadTestShape, between, constant, events, task

from loadtests.payloads import batch_body, dicom_body, image_for, json_body, multipart_body
from loadtests.steps import parse_steps, users_at
from medai_cli.common import config_settings, local_token
from serve_app.catalog.store import ModelStore
from serve_app.errors import MedAIError
from serve_app.settings import REPO_ROOT

MODEL = os.environ.get("MEDAI_LOAD_MODEL", "chest-xray-demo")
SETTINGS = config_settings(REPO_ROOT / "serve_config.yaml")
STORE = ModelStore(SETTINGS.model_store)
SPEC = STORE.starting(MODEL)  # the payloads' size: the server resizes to whichever answers
BODIES = {
    "png": multipart_body(image_for(SPEC, seed=2), MODEL),
    "dicom": dicom_body(image_for(SPEC, seed=3), MODEL),
    "json": json_body(image_for(SPEC, seed=1), MODEL),
    "batch": batch_body([image_for(SPEC, seed=s) for s in range(4, 8)], MODEL),
}
TOKEN = os.environ.get("MEDAI_TOKEN") or local_token(SETTINGS, "locust", "clinician", 12 * 3600)
ENGINEER_TOKEN = os.environ.get("MEDAI_ENGINEER_TOKEN") or local_token(
    SETTINGS, "locust-engineer", "ml_engineer", 12 * 3600
)
SWAP_S = float(os.environ.get("MEDAI_LOAD_SWAP_S", "10"))
AB = os.environ.get("MEDAI_LOAD_AB") == "1"
RAMP = (0.9, 0.1)
"""The A/B arms' weights the engineer sets, most of the traffic to each arm by turns."""
RUN_STARTED = datetime.now(UTC)
COPY_VERSION = f"load-{uuid.uuid4().hex[:8]}"
"""The copy of the model the engineer swaps in and the A/B route's second arm."""


def failure_text(status: int, text: str | None, error: object) -> str:
    """What a failed request is recorded as: its status and body's start, or, when no
    answer came (a refused or reset connection: status 0, no body), the error's type."""
    if not status:
        return f"no response: {type(error).__name__ if error else 'connection failed'}"
    return f"{status}: {(text or '')[:200]}"


class Client(FastHttpUser):
    abstract = True
    token = TOKEN

    def send(self, method: str, path: str, body: str | None = None, **kwargs: Any) -> Any:
        """One request (``body`` names a prepared payload); its JSON answer, or None."""
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = BODIES[body]
        name = kwargs.pop("name", path)
        with self.client.request(
            method, path, data=data, headers=headers, name=name, catch_response=True, **kwargs
        ) as response:
            if response.status_code not in (200, 201, 204):
                response.failure(failure_text(response.status_code, response.text, response.error))
                return None
            return response.json() if response.text else None


class ClinicalClient(Client):
    """Clinical traffic: mostly uploads, then reading a result back."""

    weight = 10
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        self.answered: list[str] = []

    def infer(self, path: str, body: str) -> None:
        answer = self.send("POST", path, body, name=f"{path} ({body})")
        if answer and "inference_id" in answer:
            self.answered = [*self.answered[-99:], answer["inference_id"]]

    @task(5)
    def upload_png(self) -> None:
        self.infer("/infer/file", "png")

    @task(2)
    def upload_dicom(self) -> None:
        self.infer("/infer/file", "dicom")

    @task(1)
    def json_pixels(self) -> None:
        self.infer("/infer", "json")

    @task(1)
    def batch(self) -> None:
        self.send("POST", "/infer/batch", "batch")

    @task(1)
    def read_back(self) -> None:
        if self.answered:
            inference_id = random.choice(self.answered)
            self.send("GET", f"/results/{inference_id}", name="/results/{id}")


class PromotingEngineer(Client):
    """Swaps the served version under load, back and forth, as a hot swap must allow; in
    an A/B experiment, shifts the route's traffic between its arms instead (a version
    that is an arm cannot be retired by a swap: the registry answers 409)."""

    weight = 1
    wait_time = constant(SWAP_S)
    token = ENGINEER_TOKEN

    def on_start(self) -> None:
        listed = self.send("GET", f"/models?name={MODEL}", name="/models") or []
        self.versions = [v["version"] for v in listed if v["status"] == "production"]
        self.versions.append(COPY_VERSION)

    @task
    def swap(self) -> None:
        self.versions.reverse()
        if AB:
            arms = [
                {"model": f"{MODEL}:{v}", "weight": w}
                for v, w in zip(self.versions, RAMP, strict=True)
            ]
            self.send("PUT", f"/routes/{MODEL}", json={"arms": arms}, name="/routes/{name}")
            return
        body = {"to_version": self.versions[0]}
        self.send("POST", f"/models/{MODEL}/rollback", json=body, name="/models/{name}/rollback")


def engineer(host: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {ENGINEER_TOKEN}"}
    return httpx.Client(base_url=host, headers=headers, timeout=60)


def production_version(client: httpx.Client) -> str:
    versions = client.get("/models", params={"name": MODEL}).raise_for_status().json()
    (version,) = [v["version"] for v in versions if v["status"] == "production"]
    return str(version)


@events.test_start.add_listener
def prepare(environment: Any, **_: Any) -> None:
    """Register a copy of the production version (validated, so it can be made production)
    and route the model's name A/B when asked; before any user starts."""
    host = environment.host
    try:
        with engineer(host) as client:
            # NOTE: the version serving, not the store's newest: that may be a candidate
            # never promoted, or a file the registry refused as tampered
            serving = production_version(client)
            original = f"{MODEL}:{serving}"
            data = STORE.read_verified(STORE.resolve(MODEL, serving))
            files = {"file": ("model.onnx", data, "application/octet-stream")}
            form = {"name": MODEL, "version": COPY_VERSION}
            client.post("/models", data=form, files=files).raise_for_status()
            promote = f"/models/{MODEL}/{COPY_VERSION}/promote"
            client.post(promote, json={"to": "validation"}).raise_for_status()
            if AB:
                copy = f"{MODEL}:{COPY_VERSION}"
                arms = [{"model": original, "weight": 0.5}, {"model": copy, "weight": 0.5}]
                client.put(f"/routes/{MODEL}", json={"arms": arms}).raise_for_status()
    except (httpx.HTTPError, MedAIError) as error:
        # NOTE: the run goes on: every request that cannot be answered is a failure
        answer = error.response.text[:500] if isinstance(error, httpx.HTTPStatusError) else ""
        logging.getLogger(__name__).error("could not prepare the run: %s %s", error, answer)


@events.test_stop.add_listener
def clean_up(environment: Any, **_: Any) -> None:
    if AB:
        with contextlib.suppress(httpx.HTTPError), engineer(environment.host) as client:
            # NOTE: the stats must not keep the route from being removed
            with contextlib.suppress(httpx.HTTPError):
                since = {"since": RUN_STARTED.isoformat()}  # this run's answers alone
                stats = client.get(f"/routes/{MODEL}/stats", params=since)
                answered = ", ".join(
                    f"{a['model']} {a['count']}" for a in stats.raise_for_status().json()["arms"]
                )
                logging.getLogger(__name__).info("A/B arms answered: %s", answered)
            client.delete(f"/routes/{MODEL}")


if steps_text := os.environ.get("MEDAI_LOAD_STEPS"):
    STEPS = parse_steps(steps_text)

    class Steps(LoadTestShape):
        """Users over time, step by step (for watching autoscaling)."""

        def tick(self) -> tuple[int, float] | None:
            users = users_at(STEPS, self.get_run_time())
            return None if users is None else (users, max(users, 1))  # within a second
