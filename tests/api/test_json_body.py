"""Security review issue 11, finding 9: JSON pixel lists have their own body limit, and
are parsed and turned into numpy off the event loop.

Before, a 24 MiB pixel list was accepted (the 50 MiB limit of every body) and cost
~0.7 GiB and seconds of CPU on the ingress's event loop, where every other request
waits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import serve_app.http.routes
from serve_app.auth.credentials import Credentials
from serve_app.settings import LimitsSettings, Settings
from tests.images import infer_body, pixels
from tests.local_app import local_app
from tests.problems import assert_problem, assert_still_serving

MIB = 1024 * 1024
JSON_LIMIT = LimitsSettings().max_json_body_bytes


def oversized_json(size: int) -> bytes:
    """The start of a pixel list, ``size`` bytes long (never complete: it is never read)."""
    head = b'{"width": 2048, "height": 2048, "dtype": "uint8", "data": ['
    return head + b"0," * ((size - len(head)) // 2) + b"0" * ((size - len(head)) % 2)


@pytest.mark.parametrize("path", ["/infer", "/infer/batch"])
def test_a_json_body_past_its_own_limit_is_413_naming_it(api: httpx.Client, path: str) -> None:
    body = oversized_json(JSON_LIMIT + 1)
    assert len(body) < LimitsSettings().max_body_bytes  # an upload this size is accepted

    response = api.post(path, content=body, headers={"content-type": "application/json"})

    assert_problem(response, 413, "body", "max-size")
    assert response.json()["detail"] == (
        f"request body exceeds {JSON_LIMIT} bytes (limits.max_json_body_bytes)"
    )
    assert_still_serving(api)


@pytest.fixture(scope="module")
def small_json_api(
    server_args: dict[str, Any],
    credentials: Credentials,
    clinician: dict,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    settings = Settings(**{**server_args, "limits": {"max_json_body_bytes": MIB}})
    app = local_app(settings, credentials, tmp_path_factory.mktemp("small_json"))
    with TestClient(app, headers=clinician) as c:
        yield c


def test_the_limit_holds_for_a_streamed_body_and_is_configurable(
    small_json_api: TestClient,
) -> None:
    body = oversized_json(MIB + 1)
    chunks = (body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024))

    response = small_json_api.post(
        "/infer", content=chunks, headers={"content-type": "application/json"}
    )

    assert_problem(response, 413, "body", "max-size")
    assert f"exceeds {MIB} bytes" in response.json()["detail"]
    # A 256x256 image is well within it, and files keep the general limit.
    assert small_json_api.post("/infer", json=infer_body(pixels(2))).status_code == 200


def where(record: list[str], real: Callable[..., Any]) -> Callable[..., Any]:
    """``real``, noting whether each call ran on an event loop's thread or elsewhere."""

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            record.append("event loop")
        except RuntimeError:
            record.append("other thread")
        return real(*args, **kwargs)

    return watched


def test_a_large_pixel_list_is_parsed_and_converted_off_the_event_loop(
    inprocess_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = pixels(5, 1024, 1024)  # ~4.5 MB of JSON
    raw = json.dumps(infer_body(image)).encode()
    parses: list[str] = []
    conversions: list[str] = []
    real_loads = json.loads

    def loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if len(text) < len(raw):  # token headers and the like
            return real_loads(text, *args, **kwargs)
        return where(parses, real_loads)(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", loads)
    monkeypatch.setattr(
        serve_app.http.routes,
        "pixels_from_list",
        where(conversions, serve_app.http.routes.pixels_from_list),
    )

    response = inprocess_client.post(
        "/infer", content=raw, headers={"content-type": "application/json"}
    )

    assert response.status_code == 200, response.text
    assert parses == ["other thread"]
    assert conversions == ["other thread"]
    assert np.isfinite(response.json()["outputs"]).all()


def test_batch_pixel_lists_are_converted_off_the_event_loop(
    inprocess_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversions: list[str] = []
    monkeypatch.setattr(
        serve_app.http.routes,
        "pixels_from_list",
        where(conversions, serve_app.http.routes.pixels_from_list),
    )
    images = [infer_body(pixels(seed, 128, 128)) for seed in range(3)]

    response = inprocess_client.post("/infer/batch", json={"images": images})

    assert response.status_code == 200, response.text
    assert conversions == ["other thread"] * 3
