"""Contract tests run against both the in-process app and the app served by Ray."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_local_app
from serve_app.settings import Settings
from tests.conftest import TokenFactory
from tests.local_app import own_database


@pytest.fixture(scope="session")
def inprocess_rng() -> random.Random:
    """What draws the in-process app's A/B arms: a test that counts arms seeds it."""
    return random.Random(0)


@pytest.fixture(scope="module")
def inprocess_client(
    settings: Settings,
    credentials: Credentials,
    clinician: dict[str, str],
    inprocess_rng: random.Random,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    # NOTE: one per module, so no database stays open into the PostgreSQL tests
    # (tests/storage): tortoise binds its tables to one SQL dialect at a time.
    own = own_database(settings, tmp_path_factory.mktemp("inprocess"))
    app = create_local_app(own, credentials, rng=inprocess_rng)
    with TestClient(app, headers=clinician) as client:
        yield client


@pytest.fixture(scope="session")
def served_client(served: str, clinician: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=60, headers=clinician) as client:
        yield client


@pytest.fixture(params=["inprocess", pytest.param("served", marks=pytest.mark.serve)])
def api(request: pytest.FixtureRequest) -> httpx.Client:
    """An HTTP client of the real app: in-process, or over HTTP through Ray Serve."""
    return request.getfixturevalue(f"{request.param}_client")


def bearer(token_for: TokenFactory, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(role)}"}


@pytest.fixture
def engineer(token_for: TokenFactory) -> dict[str, str]:
    return bearer(token_for, "ml_engineer")


@pytest.fixture
def admin(token_for: TokenFactory) -> dict[str, str]:
    return bearer(token_for, "admin")


@pytest.fixture
def auditor(token_for: TokenFactory) -> dict[str, str]:
    return bearer(token_for, "auditor")
