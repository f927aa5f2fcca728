"""Behaviour only the Ray-served app has: batching, concurrency, large payloads, readiness."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.ingress import MESSAGES_IN_FLIGHT
from tests.conftest import TokenFactory
from tests.images import encode, infer_body, pixels
from tests.oracle import direct_outputs
from tests.unit.onnx_builders import slow_by_brightness

pytestmark = pytest.mark.serve


HOLDS = (4.0, 16.0)
"""Brightness of the holding request: it counts to 4 million (seconds of one core), or,
if too few requests had queued by its end (a loaded machine), to 16 million."""
HOLD_SHAPE = ["batch", 1, 256, 256]
"""chest-xray-demo's input: the runner holds a tensor of that shape."""


def register_hold(served: str, token_for: TokenFactory) -> str:
    """Register :func:`slow_by_brightness` (a version of its own name); its file hash."""
    engineer = {"Authorization": f"Bearer {token_for('ml_engineer')}"}
    data = slow_by_brightness(HOLD_SHAPE)
    files = {"file": ("model.onnx", data, "application/octet-stream")}
    form = {"name": "runner-hold", "version": "1"}
    response = httpx.post(f"{served}/models", files=files, data=form, headers=engineer, timeout=60)
    assert response.status_code == 201, response.text
    return hashlib.sha256(data).hexdigest()


async def stats_until(runner: DeploymentHandle, done: Callable[[dict], bool]) -> dict:
    while not done(stats := await runner.stats.remote()):
        await asyncio.sleep(0.02)
    return stats


def test_concurrent_requests_are_batched_and_never_mixed(
    served: str, model_store, clinician: dict[str, str], token_for: TokenFactory
) -> None:
    """The runner's one run slot (``max_concurrent_batches`` 1, one replica) is held by a
    slow request until the 32 requests' first messages have queued behind it: they overlap
    by construction, and must then run in fewer ONNX Runtime calls than requests, each
    getting its own rows.

    NOTE: not all 32 need reach the runner while it is held: the ingress keeps
    ``MESSAGES_IN_FLIGHT`` messages in flight and sends the rest as answers come back.
    Those messages carry at least as many images, which then share one run."""
    images = [pixels(1000 + i, 256, 256) for i in range(32)]
    together = MESSAGES_IN_FLIGHT
    hold_sha256 = register_hold(served, token_for)

    async def scenario(brightness: float) -> tuple[bool, dict, list[list[float]], dict]:
        """Whether the first messages queued behind the hold; stats before and after; the
        answers."""
        # NOTE: in throughput-optimized mode a handle must be used inside an event loop.
        runner = serve.get_deployment_handle("model-chest-xray-demo", app_name="medai")
        before = await runner.stats.remote()
        hold_tensor = np.full([1, *HOLD_SHAPE[1:]], brightness, np.float32)

        async def hold() -> None:
            await runner.infer.remote(hold_tensor, hold_sha256)

        held = asyncio.create_task(hold())
        await asyncio.wait_for(stats_until(runner, lambda s: s["calls"] > before["calls"]), 300)
        async with httpx.AsyncClient(base_url=served, timeout=600, headers=clinician) as client:
            posts = [
                asyncio.create_task(client.post("/infer", json=infer_body(image)))
                for image in images
            ]
            queued = await asyncio.wait_for(
                stats_until(runner, lambda s: s["queued"] >= together or held.done()), 600
            )
            overlapped = queued["queued"] >= together and not held.done()
            responses = await asyncio.gather(*posts)
        await held
        after = await runner.stats.remote()
        for response in responses:
            assert response.status_code == 200, response.text
        return overlapped, before, [r.json()["outputs"] for r in responses], after

    for brightness in HOLDS:
        overlapped, before, outputs, after = asyncio.run(scenario(brightness))
        if overlapped:
            break
    else:
        pytest.fail(f"every hold ended before {together} images had queued behind it")

    for image, served_outputs in zip(images, outputs, strict=True):
        np.testing.assert_allclose(
            served_outputs,
            direct_outputs(model_store, "chest-xray-demo", image),
            atol=1e-5,
            rtol=0,
        )
    # NOTE: less the holding run of one image
    assert after["images"] - before["images"] - 1 == 32
    assert after["batches"] - before["batches"] - 1 < 32, "no two requests shared a batch"
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
    served = ("chest-xray-demo", "derm-demo", "lesion-seg-demo", "lesion-detect-demo")
    assert ready == {"ready": True, "models": dict.fromkeys(served, "ready")}
