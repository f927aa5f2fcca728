"""The in-process app the fuzz tests attack, with a clinician's token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_local_app
from serve_app.settings import Settings
from tests.conftest import TokenFactory


@pytest.fixture(scope="session")
def fuzz_app(settings: Settings, credentials: Credentials) -> FastAPI:
    return create_local_app(settings, credentials)


@pytest.fixture(scope="session")
def bearer(token_for: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('clinician')}"}


@pytest.fixture(scope="session")
def fuzz_client(fuzz_app: FastAPI, bearer: dict[str, str]) -> Iterator[TestClient]:
    # NOTE: an unhandled error must come back as the 500 the app sends, so that the
    # assertion sees it and Hypothesis can shrink the request that caused it.
    with TestClient(fuzz_app, headers=bearer, raise_server_exceptions=False) as client:
        yield client
