"""The in-process app the fuzz tests attack, with a clinician's token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from tests.conftest import TokenFactory
from tests.local_app import local_app


@pytest.fixture(scope="module")
def fuzz_app(
    settings: Settings, credentials: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> FastAPI:
    """A module's own app: its database closes with the module's client."""
    return local_app(settings, credentials, tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="session")
def bearer(token_for: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('clinician')}"}


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app: FastAPI, bearer: dict[str, str]) -> Iterator[TestClient]:
    # NOTE: an unhandled error must come back as the 500 the app sends, so that the
    # assertion sees it and Hypothesis can shrink the request that caused it.
    with TestClient(fuzz_app, headers=bearer, raise_server_exceptions=False) as client:
        yield client
