"""The attack matrix of issue 3 against the running app: who may reach which route."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from serve_app.auth.credentials import Credentials
from tests.conftest import TEST_AUTH, TokenFactory
from tests.images import encode, infer_body, pixels
from tests.jwt_keys import forge, rsa_pair
from tests.problems import assert_problem, assert_still_serving

BODY = infer_body(pixels(1, 64, 64))


def send(
    api: httpx.Client, token: str | None, method: str = "POST", url: str = "/infer", **kw: Any
) -> httpx.Response:
    """A request with exactly this bearer token (or none), whatever the client's default."""
    request = api.build_request(method, url, **kw)
    del request.headers["authorization"]
    if token is not None:
        request.headers["authorization"] = f"Bearer {token}".rstrip()
    return api.send(request)


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base = {"sub": "mallory", "role": "admin", "iat": now, "exp": now + 600}
    base |= {"iss": TEST_AUTH["issuer"], "aud": TEST_AUTH["audience"]}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def signed(**overrides: object) -> Callable[[bytes], str]:
    return lambda secret: jwt.encode(claims(**overrides), secret, algorithm="HS256")


RSA = rsa_pair()
NOW = int(time.time())
ATTACKS: dict[str, tuple[Callable[[bytes], str | None], str]] = {
    "no token": (lambda _: None, "missing"),
    "empty bearer": (lambda _: "", "missing"),
    "not a jwt": (lambda _: "not-a-jwt", "malformed"),
    "garbage segments": (lambda _: "a.b.c", "malformed"),
    "alg none": (lambda _: forge({"alg": "none", "typ": "JWT"}, claims()), "algorithm"),
    "alg none, secret-signed": (
        lambda s: forge({"alg": "none"}, claims(), hmac_key=s),
        "algorithm",
    ),
    "rs256 token on an hs256 server": (
        lambda _: jwt.encode(claims(), RSA.private, algorithm="RS256"),
        "algorithm",
    ),
    "hs256 signed with the rsa public key": (
        lambda _: forge({"alg": "HS256"}, claims(), hmac_key=RSA.public_pem),
        "signature",
    ),
    "bad signature": (lambda _: forge({"alg": "HS256"}, claims(), hmac_key=b"x" * 48), "signature"),
    "expired": (signed(exp=NOW - 3600), "expired"),
    "nbf in the future": (signed(nbf=NOW + 3600), "not-yet-valid"),
    "wrong issuer": (signed(iss="https://evil.test"), "issuer"),
    "wrong audience": (signed(aud="another-service"), "audience"),
    "no sub": (signed(sub=None), "missing-claim"),
    "no role": (signed(role=None), "missing-claim"),
    "no exp": (signed(exp=None), "missing-claim"),
    "300-character sub": (signed(sub="x" * 300), "claim-length"),
    "over 8 KB": (signed(padding="p" * 9000), "max-size"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_401_and_never_echoes_the_token(
    api: httpx.Client, credentials: Credentials, attack: str
) -> None:
    build, rule = ATTACKS[attack]
    assert credentials.jwt_secret is not None
    token = build(credentials.jwt_secret.get_secret_value().encode())
    response = send(api, token, json=BODY)
    assert_problem(response, 401, "authorization", rule)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm=")
    assert ('error="invalid_token"' in challenge) == (rule != "missing")
    if token:
        assert token not in response.text
        assert all(part not in response.text for part in token.split(".") if len(part) > 8)


def test_scheme_other_than_bearer_is_missing(api: httpx.Client, token_for: TokenFactory) -> None:
    request = api.build_request("POST", "/infer", json=BODY)
    request.headers["authorization"] = f"Basic {token_for('clinician')}"
    assert_problem(api.send(request), 401, "authorization", "missing")


def test_tokens_are_refused_before_the_body_is_read(api: httpx.Client) -> None:
    response = send(api, None, content=b"{ not json", headers={"content-type": "application/json"})
    assert_problem(response, 401, "authorization", "missing")


@pytest.mark.parametrize(
    ("method", "url"),
    [("POST", "/infer"), ("POST", "/infer/batch"), ("POST", "/infer/file"), ("GET", "/nowhere")],
)
def test_every_route_but_health_needs_a_token(api: httpx.Client, method: str, url: str) -> None:
    assert_problem(send(api, None, method, url), 401, "authorization", "missing")


@pytest.mark.parametrize("url", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
def test_health_and_docs_are_public(api: httpx.Client, url: str) -> None:
    assert send(api, None, "GET", url).status_code == 200


@pytest.mark.parametrize("role", ["auditor", "radiologist", "ADMIN"])
def test_a_role_without_inference_gets_403(
    api: httpx.Client, token_for: TokenFactory, role: str
) -> None:
    token = token_for(role)
    png = encode(pixels(2, 64, 64), "PNG")
    for response in (
        send(api, token, json=BODY),
        send(api, token, url="/infer/batch", json={"images": [BODY]}),
        send(api, token, url="/infer/file", files={"file": ("x.png", png)}),
    ):
        assert_problem(response, 403, "role", "permission")
        assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("role", ["clinician", "ml_engineer", "admin"])
def test_inferring_roles_are_served(api: httpx.Client, token_for: TokenFactory, role: str) -> None:
    response = send(api, token_for(role), json=BODY)
    assert response.status_code == 200, response.text


def test_after_every_rejection_the_next_request_is_served(
    api: httpx.Client, credentials: Credentials
) -> None:
    assert credentials.jwt_secret is not None
    secret = credentials.jwt_secret.get_secret_value().encode()
    for build, _ in ATTACKS.values():
        assert send(api, build(secret), json=BODY).status_code == 401
    assert_still_serving(api)
