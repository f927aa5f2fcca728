"""``/readyz``: 200 only when every deployment answers and every served model is loaded.

The 503s are shown in process with a backend one of whose components is down (a model
runner that failed, a registry that never answers): the Ray-served app is shared by the
whole session and cannot lose a deployment for one test. The served app is held to the
same 200 shape, with the Registry and the AuditWriter among its components.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

import serve_app.http.routes as routes
from medai_cli.common import config_settings
from serve_app.audit.trail import DisabledTrail
from serve_app.auth.credentials import Credentials
from serve_app.backend import LocalBackend
from serve_app.catalog.store import ModelStore
from serve_app.http.app import create_app
from serve_app.readiness import Component, model_components, probe
from serve_app.registry.registry import ModelRegistry
from serve_app.runtime.inspection import InspectionLimits
from serve_app.runtime.lifecycle import ModelState, RunnerStatus
from serve_app.runtime.onnx_model import CPU
from serve_app.settings import REPO_ROOT, Settings
from tests.problems import PROBLEM_JSON

CONFIG = REPO_ROOT / "serve_config.yaml"


def served_models(request: pytest.FixtureRequest, settings: Settings) -> dict[str, str]:
    """Every model the app under test serves, ready: ``serve_config.yaml``'s when served,
    the settings' own in-process."""
    served = "served" in request.node.callspec.id
    models = config_settings(CONFIG).models if served else settings.models
    return {m.name: "ready" for m in models}


class PartlyDownBackend(LocalBackend):
    """The real in-process backend, reporting its components as the Serve backend does:
    each through ``probe``, with the model runners' states as a preprocessor gathers them."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.statuses = dict.fromkeys(self.specs, RunnerStatus(ModelState.READY))
        self.registry_answers = True
        self.hang = False

    async def readiness(self) -> list[Component]:
        if self.hang:
            await asyncio.Event().wait()

        async def registry() -> None:
            if not self.registry_answers:
                await asyncio.Event().wait()  # a registry replica that never answers

        checked = await probe("Registry", registry, 0.2)
        return [
            Component("Preprocessor", True),
            checked,
            *model_components(self.statuses, self.specs),
        ]


@pytest.fixture
def backend(settings: Settings) -> PartlyDownBackend:
    return PartlyDownBackend(settings)


@pytest.fixture
def anonymous(
    settings: Settings, credentials: Credentials, backend: PartlyDownBackend
) -> Iterator[TestClient]:
    trail = DisabledTrail()  # readiness reads and writes no record
    registry = ModelRegistry(
        ModelStore(settings.model_store),
        trail,
        backend.specs,
        max_loaded_versions=settings.runtime.max_loaded_versions,
        inspection=InspectionLimits.of(settings.limits),
    )
    with TestClient(create_app(settings, backend, trail, registry, credentials)) as client:
        yield client


def test_ready_is_200_with_every_model(
    api: httpx.Client, request: pytest.FixtureRequest, settings: Settings
) -> None:
    response = api.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"ready": True, "models": served_models(request, settings)}


def test_verbose_readiness_names_every_deployment(
    api: httpx.Client, request: pytest.FixtureRequest, settings: Settings
) -> None:
    response = api.get("/readyz", params={"verbose": "true"})

    assert response.status_code == 200, response.text
    body = response.json()
    models = served_models(request, settings)
    assert body["ready"] is True and body["models"] == models
    components = {c["name"]: c for c in body["components"]}
    expected = {"Ingress", "Preprocessor", *(f"model-{name}" for name in models)}
    if "served" in request.node.callspec.id:
        expected |= {"Registry", "AuditWriter"}  # deployments of their own
    assert expected <= set(components), components
    for name, component in components.items():
        # a model runner says where it runs: here, no GPU, the CPU
        provider = {"execution_provider": CPU} if name.startswith("model-") else {}
        assert component == {"name": name, "ready": True, "reason": "ready", **provider}


def test_a_failed_model_that_is_not_the_default_is_503(
    anonymous: TestClient, backend: PartlyDownBackend
) -> None:
    backend.statuses["derm-demo"] = RunnerStatus(ModelState.FAILED)

    response = anonymous.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["errors"] == [
        {"field": "model-derm-demo", "rule": "not-ready", "message": "model is failed"}
    ]
    assert "components" not in problem


def test_a_model_the_preprocessor_does_not_report_is_503(
    anonymous: TestClient, backend: PartlyDownBackend
) -> None:
    del backend.statuses["chest-xray-demo"]

    problem = anonymous.get("/readyz").json()

    assert problem["status"] == 503
    assert [e["field"] for e in problem["errors"]] == ["model-chest-xray-demo"]


def test_a_registry_that_never_answers_is_503_within_its_deadline(
    anonymous: TestClient, backend: PartlyDownBackend
) -> None:
    backend.registry_answers = False

    started = time.monotonic()
    response = anonymous.get("/readyz", params={"verbose": "true"})

    assert time.monotonic() - started < 5
    assert response.status_code == 503
    problem = response.json()
    assert problem["errors"] == [
        {"field": "Registry", "rule": "not-ready", "message": "no answer within 0.2 s"}
    ]
    components = {c["name"]: (c["ready"], c["reason"]) for c in problem["components"]}
    assert components["Registry"] == (False, "no answer within 0.2 s")
    assert components["Ingress"] == components["model-derm-demo"] == (True, "ready")


def test_a_backend_that_hangs_is_503_not_a_hang(
    anonymous: TestClient, backend: PartlyDownBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "READINESS_TIMEOUT_S", 0.3)
    backend.hang = True

    response = anonymous.get("/readyz", params={"verbose": "1"})

    assert response.status_code == 503
    not_ready = {c["name"]: c["reason"] for c in response.json()["components"] if not c["ready"]}
    assert not_ready == {
        "Preprocessor": "not reported",
        "model-chest-xray-demo": "not reported",
        "model-derm-demo": "not reported",
    }


def test_verbose_must_be_a_boolean(anonymous: TestClient) -> None:
    response = anonymous.get("/readyz", params={"verbose": "<script>"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "verbose"
