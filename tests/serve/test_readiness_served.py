"""``/readyz`` over the real Serve backend: the deployed Preprocessor, model runners,
Registry and AuditWriter asked through their handles. A deployment that is gone (a
handle to one that does not exist) makes it 503 naming it, within its deadline, while
the served app itself, shared by the session, keeps running untouched."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ray import serve

from deployments.audit_writer import trail_of
from deployments.ingress import ServeBackend
from deployments.registry import UNAVAILABLE
from deployments.remote import Remote
from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_app
from serve_app.settings import Settings

pytestmark = pytest.mark.serve

SERVED = {"Ingress", "Preprocessor", "model-chest-xray-demo", "model-derm-demo", "Registry"}


async def readyz(settings: Settings, credentials: Credentials, registry: str) -> httpx.Response:
    """``GET /readyz?verbose=true`` of an ingress app in this process over the served
    deployments, with ``registry`` standing for the Registry deployment.

    NOTE: the handles are made and used inside this event loop: in throughput-optimized
    mode a handle cannot be used outside one.
    """

    def handle(name: str) -> serve.handle.DeploymentHandle:
        # NOTE: not checked: a handle to a deployment with no replica, as one that stopped.
        return serve.get_deployment_handle(name, app_name="medai", _check_exists=False)

    backend = ServeBackend(
        handle("Preprocessor"), settings, handle(registry), handle("AuditWriter")
    )
    registry_proxy: Any = Remote(handle("Registry"), UNAVAILABLE)
    trail = trail_of(handle("AuditWriter"), settings.audit)
    app = create_app(settings, backend, trail, registry_proxy, credentials)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
        return await client.get("/readyz", params={"verbose": "true"}, timeout=60)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for this module's handles: Serve keeps a handle's router per
    deployment in the process, bound to the loop that first used it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_every_served_deployment_is_asked_and_ready(
    served: str, settings: Settings, credentials: Credentials, loop: asyncio.AbstractEventLoop
) -> None:
    response = loop.run_until_complete(readyz(settings, credentials, "Registry"))

    assert response.status_code == 200, response.text
    components = {c["name"]: (c["ready"], c["reason"]) for c in response.json()["components"]}
    assert components == {name: (True, "ready") for name in SERVED | {"AuditWriter"}}


def test_a_deployment_that_is_gone_is_503_naming_it(
    served: str, settings: Settings, credentials: Credentials, loop: asyncio.AbstractEventLoop
) -> None:
    response = loop.run_until_complete(readyz(settings, credentials, "RegistryThatIsGone"))

    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["errors"] == [
        {"field": "Registry", "rule": "not-ready", "message": "no answer within 5 s"}
    ]
    components = {c["name"]: c["ready"] for c in problem["components"]}
    assert components == {name: name != "Registry" for name in SERVED | {"AuditWriter"}}
