"""Shadow copies on the deployed app: they run in the preprocessing replicas, from the
image the answer decoded, and their results reach the audit writer from there; stored,
audited, counted per route, never returned."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TokenFactory
from tests.images import infer_body, pixels
from tests.serve.test_hot_swap import MODEL, as_role, register, variant

pytestmark = [pytest.mark.serve, pytest.mark.timeout(240)]

ENDPOINT = "chest-shadowed"
SHADOW = "9.0-shadow"
REQUESTS = 12


def production_version(client: httpx.Client) -> str:
    versions = client.get("/models", params={"name": MODEL}).json()
    (version,) = [v["version"] for v in versions if v["status"] == "production"]
    return version


def test_shadow_copies_run_beside_served_answers_and_are_stored(
    served: str, model_store: Path, token_for: TokenFactory, clinician: dict[str, str]
) -> None:
    engineer = httpx.Client(base_url=served, headers=as_role(token_for, "ml_engineer"), timeout=60)
    auditor = httpx.Client(base_url=served, headers=as_role(token_for, "auditor"), timeout=60)
    client = httpx.Client(base_url=served, headers=clinician, timeout=60)
    register(engineer, variant(model_store, threshold=0.3, tag="shadow"), SHADOW)
    answering = f"{MODEL}:{production_version(engineer)}"
    config = {"arms": [{"model": answering, "weight": 1}], "shadow": [f"{MODEL}:{SHADOW}"]}
    assert engineer.put(f"/routes/{ENDPOINT}", json=config).status_code == 200
    try:
        deadline = time.monotonic() + 30  # the preprocessors follow the registry each second
        while (
            client.post("/infer", json=infer_body(pixels(1, 64, 64), model=ENDPOINT)).status_code
            != 200
        ):
            assert time.monotonic() < deadline, f"{ENDPOINT} did not start routing"
            time.sleep(0.5)
        answers = [
            client.post("/infer", json=infer_body(pixels(700 + i, 64, 64), model=ENDPOINT))
            for i in range(REQUESTS)
        ]
        assert [a.status_code for a in answers] == [200] * REQUESTS
        assert {(a.json()["endpoint"], a.json()["arm"]) for a in answers} == {(ENDPOINT, answering)}

        deadline = time.monotonic() + 60
        while True:
            stats = auditor.get(f"/routes/{ENDPOINT}/stats").json()
            copies = {s["model"]: s for s in stats["shadows"]}
            stored = copies.get(f"{MODEL}:{SHADOW}", {}).get("count", 0)
            if stored >= REQUESTS:
                break
            assert time.monotonic() < deadline, f"{stored} of {REQUESTS} copies stored: {stats}"
            time.sleep(0.5)
        # NOTE: the copies ran the same outputs under another threshold: agreement is a
        # share of their answers, and never the clients' business.
        assert 0 <= copies[f"{MODEL}:{SHADOW}"]["agreement"] <= 1
        ids = [a.json()["inference_id"] for a in answers]
        assert all(auditor.get(f"/results/{i}").json()["shadow_of"] is None for i in ids)
        assert auditor.get("/audit/verify").json()["valid"] is True
    finally:
        assert engineer.delete(f"/routes/{ENDPOINT}").status_code in (200, 204)
