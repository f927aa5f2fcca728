"""Promoting and rolling back a version under load: no failed request, every answer
names the version that served it, and a tampered file is never promoted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import onnx
import pytest

from serve_app.catalog.store import ModelStore
from tests.api.test_records import whole_trail
from tests.conftest import TokenFactory
from tests.images import infer_body, pixels
from tests.problems import assert_problem

pytestmark = [pytest.mark.serve, pytest.mark.timeout(300)]

CLIENTS = 20
MODEL = "chest-xray-demo"
BASE_VERSION = "1.0.0"


def variant(model_store: Path, threshold: float, tag: str = "") -> bytes:
    """The demo model with another decision threshold: the same outputs, a new file
    (another for each ``tag``).

    The answer's ``threshold`` then shows which version's spec interpreted it.
    """
    store = ModelStore(model_store)
    model = onnx.load_from_string(store.read_verified(store.resolve(MODEL, BASE_VERSION)))
    props = {p.key: p.value for p in model.metadata_props} | {"medai.threshold": str(threshold)}
    if tag:
        props["medai.description"] = f"variant {tag}"
    onnx.helper.set_model_props(model, props)
    return model.SerializeToString()


@dataclass(frozen=True)
class Answer:
    swaps: int
    """How many swaps had returned when the request was sent."""
    status: int
    version: str | None
    threshold: float | None


class Load:
    """``CLIENTS`` threads posting /infer until stopped, each keeping its own answers and
    the exception that ended it, if one did: a client that dies must fail the test, not
    leave the others to make up its count."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url, self.headers = base_url, headers
        self.swaps = 0
        self.answers: list[list[Answer]] = [[] for _ in range(CLIENTS)]
        self.errors: list[BaseException | None] = [None] * CLIENTS
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def _client(self, index: int) -> None:
        try:
            with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=60) as client:
                seed = 5000 + index * 10_000
                while not self.stop.is_set():
                    seed += 1
                    swaps = self.swaps
                    response = client.post("/infer", json=infer_body(pixels(seed, 64, 64)))
                    body = response.json() if response.status_code == 200 else {}
                    self.answers[index].append(
                        Answer(
                            swaps,
                            response.status_code,
                            body.get("model_version"),
                            body.get("threshold"),
                        )
                    )
        # NOTE: whatever ends a client is kept: the test fails naming it.
        except BaseException as error:
            self.errors[index] = error

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def swapped(self) -> None:
        """A swap has returned: what clients send from now on counts towards the next."""
        self.swaps += 1

    def until(self, version: str, timeout_s: float = 60) -> None:
        """Wait until every client has been answered by ``version`` since the last swap."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_no_client_died()
            waiting = [
                i for i, answers in enumerate(self.answers) if not self._served(answers, version)
            ]
            if not waiting:
                return
            time.sleep(0.2)
        pytest.fail(f"clients {waiting} were not served by {version} within {timeout_s}s")

    def _served(self, answers: list[Answer], version: str) -> bool:
        return any(a.swaps == self.swaps and a.version == version for a in reversed(answers))

    def assert_no_client_died(self) -> None:
        died = {i: repr(error) for i, error in enumerate(self.errors) if error is not None}
        assert not died, f"clients raised: {died}"

    def assert_every_client_stayed_healthy(self) -> None:
        """No client hung or died, and each sent requests after every swap."""
        hung = [i for i, thread in enumerate(self.threads) if thread.is_alive()]
        assert not hung, f"clients {hung} did not stop"
        self.assert_no_client_died()
        for index, answers in enumerate(self.answers):
            sent = {a.swaps for a in answers}
            assert sent == set(range(self.swaps + 1)), f"client {index} sent after swaps {sent}"

    def everything(self) -> list[Answer]:
        return [answer for answers in self.answers for answer in answers]


def as_role(token_for: TokenFactory, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(role)}"}


def register(client: httpx.Client, data: bytes, version: str) -> None:
    files = {"file": ("model.onnx", data, "application/octet-stream")}
    response = client.post("/models", files=files, data={"name": MODEL, "version": version})
    assert response.status_code == 201, response.text


def promote(client: httpx.Client, version: str, to: str) -> httpx.Response:
    return client.post(f"/models/{MODEL}/{version}/promote", json={"to": to})


def test_promote_and_roll_back_under_load_fail_no_request(
    served: str, model_store: Path, token_for: TokenFactory, clinician: dict[str, str]
) -> None:
    engineer = httpx.Client(base_url=served, headers=as_role(token_for, "ml_engineer"), timeout=60)
    register(engineer, variant(model_store, threshold=0.5), "2.0-swap")
    assert promote(engineer, "2.0-swap", "validation").status_code == 200

    with Load(served, clinician) as load:
        load.until(BASE_VERSION)
        promoted = promote(engineer, "2.0-swap", "production")
        assert promoted.status_code == 200, promoted.text
        load.swapped()
        load.until("2.0-swap")
        rolled_back = engineer.post(f"/models/{MODEL}/rollback", json={"to_version": BASE_VERSION})
        assert rolled_back.status_code == 200, rolled_back.text
        load.swapped()
        load.until(BASE_VERSION)

    load.assert_every_client_stayed_healthy()
    answers = load.everything()
    statuses = {a.status for a in answers}
    assert statuses == {200}, f"non-200 answers during the swaps: {statuses}"
    thresholds = {(a.version, a.threshold) for a in answers}
    assert thresholds == {(BASE_VERSION, 0.85), ("2.0-swap", 0.5)}
    print(f"{len(answers)} answers from {CLIENTS} clients over two swaps, all 200")


def test_a_tampered_version_is_refused_and_the_old_one_keeps_serving(
    served: str, model_store: Path, token_for: TokenFactory, clinician: dict[str, str]
) -> None:
    engineer = httpx.Client(base_url=served, headers=as_role(token_for, "ml_engineer"), timeout=60)
    data = variant(model_store, threshold=0.6)
    register(engineer, data, "3.0-tampered")
    assert promote(engineer, "3.0-tampered", "validation").status_code == 200
    store = ModelStore(model_store)
    blob: Callable[[], Path] = lambda: store.blob_path(store.resolve(MODEL, "3.0-tampered").sha256)  # noqa: E731
    blob().write_bytes(data[:-16] + b"\x00" * 16)  # same size, other bytes

    refused = promote(engineer, "3.0-tampered", "production")
    assert_problem(refused, 409, "model", "integrity")

    with httpx.Client(base_url=served, headers=clinician, timeout=60) as client:
        answer = client.post("/infer", json=infer_body(pixels(7, 64, 64))).json()
        assert answer["model_version"] != "3.0-tampered"
        auditor = as_role(token_for, "auditor")
        trail = whole_trail(client, auditor)
        listed = client.get("/models", params={"name": MODEL}, headers=auditor).json()
    failures = [e for e in trail if e["action"] == "model.integrity-failure"]
    assert any(e["object_id"] == f"{MODEL}:3.0-tampered" for e in failures)
    statuses = {v["version"]: v["status"] for v in listed}
    assert statuses["3.0-tampered"] == "validation"
