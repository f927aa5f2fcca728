"""Key and rate-limit configurations other than the test servers' own, on in-process apps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from tests.conftest import TokenFactory
from tests.images import infer_body, pixels
from tests.jwt_keys import KeyPair, ec_pair, forge, rsa_pair, write_jwks
from tests.local_app import local_app
from tests.problems import assert_problem

BODY = infer_body(pixels(1, 64, 64))
RSA, EC = rsa_pair(), ec_pair()


def client(
    settings: Settings, credentials: Credentials, directory: Path, **overrides: Any
) -> TestClient:
    configured = settings.model_copy(update=overrides)
    return TestClient(local_app(configured, credentials, directory))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(pair: KeyPair, kid: str | None, **claims: object) -> str:
    now = int(time.time())
    body = {"sub": "bob", "role": "ml_engineer", "iat": now, "exp": now + 600} | claims
    return jwt.encode(
        body, pair.private, algorithm=pair.algorithm, headers={"kid": kid} if kid else None
    )


@pytest.fixture(scope="module")
def jwks_app(
    settings: Settings, credentials: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    jwks = write_jwks(tmp_path_factory.mktemp("jwks"), {"rsa-2026": RSA, "ec-2026": EC})
    auth = settings.auth.model_copy(
        update={
            "algorithms": ["RS256", "ES256"],
            "jwks_file": jwks,
            "issuer": None,
            "audience": None,
        }
    )
    with client(settings, credentials, tmp_path_factory.mktemp("app"), auth=auth) as app:
        yield app


@pytest.mark.parametrize(("pair", "kid"), [(RSA, "rsa-2026"), (EC, "ec-2026")])
def test_jwks_server_accepts_tokens_of_each_key(
    jwks_app: TestClient, pair: KeyPair, kid: str
) -> None:
    response = jwks_app.post("/infer", json=BODY, headers=bearer(token(pair, kid)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda: token(RSA, "rsa-2025"), "unknown-kid"),
        (lambda: token(RSA, None), "unknown-kid"),
        (lambda: token(rsa_pair(), "rsa-2026"), "signature"),
        (lambda: token(RSA, "ec-2026"), "algorithm"),
        (
            lambda: forge(
                {"alg": "HS256", "kid": "rsa-2026"}, {"sub": "x", "role": "admin"}, RSA.public_pem
            ),
            "algorithm",
        ),
        (
            lambda: forge({"alg": "none", "kid": "rsa-2026"}, {"sub": "x", "role": "admin"}),
            "algorithm",
        ),
    ],
    ids=[
        "unknown kid",
        "no kid",
        "foreign key",
        "kid of another family",
        "hs256 key confusion",
        "alg none",
    ],
)
def test_jwks_server_attacks(jwks_app: TestClient, make: Any, rule: str) -> None:
    response = jwks_app.post("/infer", json=BODY, headers=bearer(make()))
    assert_problem(response, 401, "authorization", rule)


def test_hs_secret_cannot_sign_for_an_rs256_server(
    settings: Settings, credentials: Credentials, tmp_path: Path
) -> None:
    auth = settings.auth.model_copy(
        update={"algorithms": ["RS256"], "public_key_file": RSA.write_public_pem(tmp_path)}
    )
    with client(settings, credentials, tmp_path, auth=auth) as app:
        assert credentials.jwt_secret is not None
        hs = jwt.encode(
            {"sub": "x", "role": "admin", "exp": time.time() + 60},
            credentials.jwt_secret.get_secret_value(),
            algorithm="HS256",
        )
        assert_problem(
            app.post("/infer", json=BODY, headers=bearer(hs)), 401, "authorization", "algorithm"
        )
        ok = app.post(
            "/infer",
            json=BODY,
            headers=bearer(token(RSA, None, iss=auth.issuer, aud=auth.audience)),
        )
        assert ok.status_code == 200, ok.text


@pytest.fixture
def limited(settings: Settings, credentials: Credentials, tmp_path: Path) -> Iterator[TestClient]:
    rate_limit = {"enabled": True, "requests_per_second": 0.2, "burst": 3}
    with client(
        settings, credentials, tmp_path, rate_limit=settings.rate_limit.model_validate(rate_limit)
    ) as app:
        yield app


def test_rate_limit_is_per_user_with_retry_after(
    limited: TestClient, token_for: TokenFactory
) -> None:
    alice, bob = (
        bearer(token_for("clinician", sub="alice")),
        bearer(token_for("clinician", sub="bob")),
    )
    assert [limited.post("/infer", json=BODY, headers=alice).status_code for _ in range(3)] == [
        200
    ] * 3
    refused = limited.post("/infer", json=BODY, headers=alice)
    assert_problem(refused, 429, "authorization", "rate-limit")
    assert 1 <= int(refused.headers["retry-after"]) <= 5
    assert limited.post("/infer", json=BODY, headers=bob).status_code == 200


def test_rate_limit_answers_before_the_body_is_read(
    limited: TestClient, token_for: TokenFactory
) -> None:
    alice = bearer(token_for("clinician", sub="carol"))
    for _ in range(3):
        limited.post("/infer", content=b"{", headers=alice | {"content-type": "application/json"})
    refused = limited.post(
        "/infer", content=b"{", headers=alice | {"content-type": "application/json"}
    )
    assert refused.status_code == 429


def test_health_is_never_rate_limited(limited: TestClient) -> None:
    assert {limited.get("/healthz").status_code for _ in range(10)} == {200}


def test_rate_limit_is_on_in_production_by_default() -> None:
    assert Settings(environment="production").rate_limited
    assert not Settings().rate_limited
    assert not Settings(environment="production", rate_limit={"enabled": False}).rate_limited
