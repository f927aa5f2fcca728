"""Contract tests run against both the in-process app and the app served by Ray."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from serve_app.backend import LocalBackend
from serve_app.http.app import create_app
from serve_app.settings import Settings


@pytest.fixture(scope="session")
def inprocess_client(settings: Settings) -> Iterator[httpx.Client]:
    with TestClient(create_app(settings, LocalBackend(settings))) as client:
        yield client


@pytest.fixture(scope="session")
def served_client(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=60) as client:
        yield client


@pytest.fixture(params=["inprocess", pytest.param("served", marks=pytest.mark.serve)])
def api(request: pytest.FixtureRequest) -> httpx.Client:
    """An HTTP client of the real app: in-process, or over HTTP through Ray Serve."""
    return request.getfixturevalue(f"{request.param}_client")
