"""``/readyz`` over the real Serve backend: the deployed Preprocessor, model runners,
Registry and AuditWriter asked through their handles. A deployment that is gone (a
handle to one that does not exist) makes it 503 naming it, within its deadline, while
the served app itself, shared by the session, keeps running untouched."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from ray import serve

from deployments.ingress import ServeBackend
from deployments.registry import RegistryClient
from serve_app.audit.trail import MemoryTrail
from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_app
from serve_app.settings import Settings

pytestmark = pytest.mark.serve

SERVED = {"Ingress", "Preprocessor", "model-chest-xray-demo", "model-derm-demo", "Registry"}


def ingress_app(
    settings: Settings, credentials: Credentials, registry: str
) -> Iterator[TestClient]:
    """An ingress app in this process over the served deployments, with ``registry``
    standing for the Registry deployment."""

    def handle(name: str) -> serve.handle.DeploymentHandle:
        # NOTE: not checked: a handle to a deployment with no replica, as one that stopped.
        return serve.get_deployment_handle(name, app_name="medai", _check_exists=False)

    backend = ServeBackend(
        handle("Preprocessor"), settings, handle(registry), handle("AuditWriter")
    )
    app = create_app(
        settings, backend, MemoryTrail(), RegistryClient(handle("Registry")), credentials
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture
def whole(served: str, settings: Settings, credentials: Credentials) -> Iterator[TestClient]:
    yield from ingress_app(settings, credentials, "Registry")


@pytest.fixture
def registry_gone(
    served: str, settings: Settings, credentials: Credentials
) -> Iterator[TestClient]:
    yield from ingress_app(settings, credentials, "RegistryThatIsGone")


def test_every_served_deployment_is_asked_and_ready(whole: TestClient) -> None:
    response = whole.get("/readyz", params={"verbose": "true"})

    assert response.status_code == 200, response.text
    components = {c["name"]: (c["ready"], c["reason"]) for c in response.json()["components"]}
    assert components == {name: (True, "ready") for name in SERVED | {"AuditWriter"}}


def test_a_deployment_that_is_gone_is_503_naming_it(registry_gone: TestClient) -> None:
    started = time.monotonic()
    response = registry_gone.get("/readyz", params={"verbose": "true"})

    assert time.monotonic() - started < 20  # the registry's deadline is 5 s
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["errors"] == [
        {"field": "Registry", "rule": "not-ready", "message": "no answer within 5 s"}
    ]
    components = {c["name"]: c["ready"] for c in problem["components"]}
    assert components == {name: name != "Registry" for name in SERVED | {"AuditWriter"}}
