"""Schemathesis against the app's own OpenAPI schema, in process.

Every operation, /infer/file's multipart body included, goes through Schemathesis'
examples, coverage (boundary values, wrong methods, missing headers) and fuzzing
phases twice: with a clinician's token, and with an admin's, whose requests get past
the 403 of every operation a clinician may not use (the registry, routes, the audit
trail, every result). The admin's run has a model store and database of its own,
as what it registers and promotes must not reach the other tests' servers.
No answer may be a 5xx; every status code, content
type, header and body must be the ones the schema documents; an operation that
declares the bearer scheme must refuse a request without a valid token.

Not enabled, because the schema cannot say what the app checks:
``positive_data_acceptance`` (the schema gives no bounds for ``width``/``height``,
which come from ``limits``, nor ties ``len(data)`` to them) and
``negative_data_rejection`` (pydantic's lax mode accepts ``"64"`` and ``true`` for
an integer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.schemas import OpenApiSchema

from medai_cli.main import build_demo_models
from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from tests.conftest import TokenFactory
from tests.local_app import local_app

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
)


def openapi_schema(app: FastAPI, token: str) -> OpenApiSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": 20240917,
            "generation": {"max-examples": 50, "deterministic": True, "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "auth": {"openapi": {"HTTPBearer": {"bearer": token}}},
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.fixture(scope="module")
def clinician_schema(fuzz_app: FastAPI, bearer: dict[str, str]) -> Iterator[OpenApiSchema]:
    yield openapi_schema(fuzz_app, bearer["Authorization"].removeprefix("Bearer "))
    # NOTE: Schemathesis starts an app's lifespan on first use and keeps it to the
    # process's end; the apps' databases close with this module instead.
    shutdown_lifespans()


@pytest.fixture(scope="module")
def admin_schema(
    server_args: dict[str, Any],
    credentials: Credentials,
    tmp_path_factory: pytest.TempPathFactory,
    token_for: TokenFactory,
) -> Iterator[OpenApiSchema]:
    own = {name: tmp_path_factory.mktemp(f"admin_fuzz_{name}") for name in ("models", "data")}
    settings = Settings(**server_args | {"model_store": own["models"]})
    build_demo_models(settings)
    yield openapi_schema(local_app(settings, credentials, own["data"]), token_for("admin"))
    shutdown_lifespans()


@pytest.fixture(autouse=True)
def _pytest_node_id(request: pytest.FixtureRequest) -> None:
    # NOTE: schemathesis 4.32's from_fixture() reads and renames Function._nodeid,
    # which pytest 9.2 removed; without it every test here dies with AttributeError.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


clinician = schemathesis.pytest.from_fixture("clinician_schema")
admin = schemathesis.pytest.from_fixture("admin_schema")


@clinician.parametrize()
def test_every_operation_answers_as_its_schema_documents(case: Case) -> None:
    case.call_and_validate()


@admin.parametrize()
def test_every_operation_answers_an_admin_as_its_schema_documents(case: Case) -> None:
    case.call_and_validate()
