"""Behaviour only the Ray-served app has: batching, concurrency, large payloads, readiness."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from ray import serve

from tests.images import encode, infer_body, pixels
from tests.oracle import direct_outputs

pytestmark = pytest.mark.serve


def test_concurrent_requests_are_batched_and_never_mixed(
    served: str, model_store, clinician: dict[str, str]
) -> None:
    images = [pixels(1000 + i, 256, 256) for i in range(32)]

    async def scenario() -> tuple[dict, list[list[float]], dict]:
        # NOTE: in throughput-optimized mode a handle must be used inside an event loop.
        runner = serve.get_deployment_handle("model-chest-xray-demo", app_name="medai")
        before = await runner.stats.remote()
        async with httpx.AsyncClient(base_url=served, timeout=60, headers=clinician) as client:
            responses = await asyncio.gather(
                *(client.post("/infer", json=infer_body(image)) for image in images)
            )
        after = await runner.stats.remote()
        for response in responses:
            assert response.status_code == 200, response.text
        return before, [r.json()["outputs"] for r in responses], after

    before, outputs, after = asyncio.run(scenario())

    for image, served_outputs in zip(images, outputs, strict=True):
        np.testing.assert_allclose(
            served_outputs,
            direct_outputs(model_store, "chest-xray-demo", image),
            atol=1e-5,
            rtol=0,
        )
    assert after["images"] - before["images"] == 32
    assert after["batches"] - before["batches"] < 32, "no two requests shared a batch"
    assert after["largest_batch"] > 1


def test_concurrent_files_for_two_models(
    served: str, model_store, clinician: dict[str, str]
) -> None:
    jobs = [
        (pixels(2000 + i, 128, 160, channels=3), "derm-demo" if i % 2 else "chest-xray-demo")
        for i in range(16)
    ]

    def infer(job: tuple[np.ndarray, str]) -> list[float]:
        image, model = job
        with httpx.Client(base_url=served, timeout=60, headers=clinician) as client:
            response = client.post(
                "/infer/file", files={"file": ("x", encode(image, "PNG"))}, data={"model": model}
            )
            assert response.status_code == 200, response.text
            assert response.json()["model_name"] == model
            return response.json()["outputs"]

    with ThreadPoolExecutor(16) as pool:
        outputs = list(pool.map(infer, jobs))
    for (image, model), served_outputs in zip(jobs, outputs, strict=True):
        np.testing.assert_allclose(
            served_outputs, direct_outputs(model_store, model, image), atol=1e-5, rtol=0
        )


def test_largest_image_passes_every_hop(
    served: str, model_store, clinician: dict[str, str]
) -> None:
    # 16 MiB as float32 between hops; one decimal keeps the JSON body (~17 MB) under
    # limits.max_json_body_bytes (20 MiB).
    values = np.round(np.random.default_rng(3000).random((2048, 2048, 1)), 1)
    body = {**infer_body(values), "dtype": "float32"}
    with httpx.Client(base_url=served, timeout=120, headers=clinician) as client:
        response = client.post("/infer", json=body)
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        response.json()["outputs"],
        direct_outputs(model_store, "chest-xray-demo", values.astype(np.float32)),
        atol=1e-5,
        rtol=0,
    )


def test_oversized_body_is_413_and_serving_continues(
    served: str, clinician: dict[str, str]
) -> None:
    body = b"0" * (50 * 1024 * 1024 + 1)
    with httpx.Client(base_url=served, timeout=120, headers=clinician) as client:
        response = client.post(
            "/infer/file", content=body, headers={"content-type": "application/octet-stream"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert client.post("/infer", json=infer_body(pixels(1, 64, 64))).status_code == 200


def test_health_and_readiness(served: str, clinician: dict[str, str]) -> None:
    with httpx.Client(base_url=served, timeout=30, headers=clinician) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
    assert ready == {"ready": True, "models": {"chest-xray-demo": "ready", "derm-demo": "ready"}}
