"""What production serves without a token (security review, lows): health only. Metrics
need a token granting ``metrics:read``; the OpenAPI schema and docs are off unless asked."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from tests.conftest import TokenFactory
from tests.local_app import local_app
from tests.problems import assert_problem


def served(
    server_args: dict[str, Any], credentials: Credentials, directory: Path, **overrides: Any
) -> TestClient:
    """The in-process app in production, with production's own secrets for its trail (the
    tokens here are signed with the session's, which ``credentials`` hold)."""
    secrets_dir = directory / "secrets"
    secrets_dir.mkdir(mode=0o700)
    for name in ("pseudonym_key", "jwt_secret", "audit_signing_key"):
        (secrets_dir / f"medai_{name}").write_text(secrets.token_urlsafe(48))
    auth = server_args["auth"] | {"secrets_dir": secrets_dir}
    settings = Settings(**(server_args | {"environment": "production", "auth": auth} | overrides))
    return TestClient(local_app(settings, credentials, directory))


@pytest.fixture(scope="module")
def production(
    server_args: dict[str, Any], credentials: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    with served(server_args, credentials, tmp_path_factory.mktemp("production")) as client:
        yield client


def bearer(token_for: TokenFactory, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(role)}"}


@pytest.mark.parametrize("url", ["/openapi.json", "/docs", "/redoc"])
def test_no_schema_or_docs_in_production(production: TestClient, url: str) -> None:
    assert production.get(url).status_code in (401, 404)
    assert "openapi" not in production.get(url).text.lower()


def test_metrics_need_metrics_read_in_production(
    production: TestClient, token_for: TokenFactory
) -> None:
    assert_problem(production.get("/metrics"), 401, "authorization", "missing")
    refused = production.get("/metrics", headers=bearer(token_for, "clinician"))
    assert_problem(refused, 403, "role", "permission")
    for role in ("monitor", "admin"):
        allowed = production.get("/metrics", headers=bearer(token_for, role))
        assert allowed.status_code == 200
        assert "medai_http_requests" in allowed.text
    # The scraper's token opens nothing else.
    monitor = bearer(token_for, "monitor")
    assert_problem(production.get("/audit", headers=monitor), 403, "role", "permission")
    assert production.get("/healthz").status_code == 200


def test_docs_and_public_metrics_can_be_asked_for(
    server_args: dict[str, Any], credentials: Credentials, tmp_path: Path
) -> None:
    with served(server_args, credentials, tmp_path, docs=True, public_metrics=True) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/metrics").status_code == 200
