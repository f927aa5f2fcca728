"""The OpenAPI schema documents the bearer scheme, who needs it, and every error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.problems import PROBLEM_JSON

PUBLIC = {
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v2/health/live",
    "GET /v2/health/ready",
}
PROTECTED_ERRORS = {"401", "403", "404", "413", "422", "429", "503"}
"""No or bad token, role, not found, body size, validation, rate limit, not ready (or the
audit trail down): what any protected route can answer."""
BODY_ERRORS = {"400", "415"}
"""Malformed body, media type: what a route that reads a body (POST, PUT) can answer too."""


@pytest.fixture(scope="module")
def anonymous(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def openapi(anonymous: TestClient) -> dict[str, Any]:
    response = anonymous.get("/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()


def error_media_type(label: str) -> str:
    """Problem+json, except under ``/v2``: the Open Inference Protocol's own body."""
    return "application/json" if label.split()[1].startswith("/v2") else PROBLEM_JSON


def operations(openapi: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def bearer_scheme(openapi: dict[str, Any]) -> str:
    schemes = openapi["components"]["securitySchemes"]
    (name,) = (n for n, s in schemes.items() if s.get("type") == "http")
    return name


def test_the_bearer_scheme_is_an_http_jwt_scheme(openapi: dict[str, Any]) -> None:
    scheme = openapi["components"]["securitySchemes"][bearer_scheme(openapi)]
    assert scheme["scheme"] == "bearer" and scheme["bearerFormat"] == "JWT"
    assert scheme.get("description")


def test_no_global_security_hides_which_operations_are_public(openapi: dict[str, Any]) -> None:
    assert "security" not in openapi


def test_every_protected_operation_requires_the_bearer_scheme(openapi: dict[str, Any]) -> None:
    name = bearer_scheme(openapi)
    protected = {label: op for label, op in operations(openapi) if label not in PUBLIC}
    assert protected, "no protected operations in the schema"
    declared = {label: op.get("security") for label, op in protected.items()}
    assert declared == {label: [{name: []}] for label in protected}


def test_public_operations_declare_no_security(openapi: dict[str, Any]) -> None:
    public = {label: op.get("security") for label, op in operations(openapi) if label in PUBLIC}
    assert public == dict.fromkeys(PUBLIC, None)


def test_every_protected_operation_documents_each_error_as_a_problem(
    openapi: dict[str, Any],
) -> None:
    for label, operation in operations(openapi):
        if label in PUBLIC:
            continue
        responses = operation["responses"]
        expected = PROTECTED_ERRORS | (
            BODY_ERRORS if label.split()[0] in ("POST", "PUT") else set()
        )
        assert responses.keys() >= expected, (label, sorted(responses))
        for status in sorted(k for k in responses if k[0] in "45"):
            content = responses[status].get("content", {})
            assert list(content) == [error_media_type(label)], (label, status, content)
            assert responses[status].get("description"), (label, status)


def test_readiness_documents_its_503_problem(openapi: dict[str, Any]) -> None:
    responses = dict(operations(openapi))["GET /readyz"]["responses"]
    assert list(responses["503"]["content"]) == [PROBLEM_JSON]


def test_the_documented_security_is_the_enforced_security(
    openapi: dict[str, Any], anonymous: TestClient
) -> None:
    """Without a token, exactly the operations that declare the scheme answer 401."""
    refused = set()
    for label, _ in operations(openapi):
        method, path = label.split()
        response = anonymous.request(method, path)
        assert response.status_code < 500, (label, response.text)
        if response.status_code == 401:
            assert response.headers["content-type"] == error_media_type(label)
            assert response.headers["www-authenticate"].startswith("Bearer")
            refused.add(label)
    assert refused == {label for label, _ in operations(openapi)} - PUBLIC
