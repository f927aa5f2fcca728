"""The registry deployment (one replica owns the catalog), and the ingress's client of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.audit_writer import ServeTrail
from deployments.calls import call
from deployments.hops import Hop
from serve_app.audit.trail import AuditTrail, DisabledTrail
from serve_app.auth.tokens import Principal
from serve_app.catalog.routes import RouteConfig
from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.status import ModelStatus
from serve_app.catalog.store import ModelStore
from serve_app.logs import configure_logging
from serve_app.registry.registry import ModelRegistry, Registration
from serve_app.routing.plan import ServingPlan
from serve_app.runtime.inspection import InspectionLimits
from serve_app.runtime.workdir import enter_empty_directory
from serve_app.schemas.models import ModelVersionOut
from serve_app.schemas.routes import RouteOut, RouteStats
from serve_app.settings import Settings

UNAVAILABLE = "the model registry is unavailable; nothing was changed"


@serve.deployment(num_replicas=1, max_ongoing_requests=16)
class Registry:
    """Registers model versions into the store and moves them through their lifecycle.

    Exactly one replica, so that checking a change against the records and recording it
    happen one at a time; every change is committed with its audit entry by the writer.
    """

    def __init__(
        self,
        settings: Settings,
        specs: dict[str, ModelSpec],
        audit_writer: DeploymentHandle | None,
    ) -> None:
        configure_logging(settings.log_level)
        store = ModelStore(settings.model_store.resolve())
        enter_empty_directory()
        trail: AuditTrail = (
            ServeTrail(audit_writer, settings.audit.max_batch_events, settings.audit.call_timeout_s)
            if audit_writer is not None
            else DisabledTrail()
        )
        self.registry = ModelRegistry(
            store,
            trail,
            specs,
            max_loaded_versions=settings.runtime.max_loaded_versions,
            inspection=InspectionLimits.of(settings.limits),
        )
        # NOTE: without records (audit.enabled false, benchmarks) nothing can be promoted.
        self.fixed = ServingPlan(dict(specs)) if audit_writer is None else None

    async def serving(self) -> ServingPlan:
        """What answers now: versions and routes (the preprocessors poll this)."""
        return self.fixed if self.fixed is not None else await self.registry.serving()

    async def versions(self, name: str | None) -> list[ModelVersionOut]:
        return await self.registry.versions(name)

    async def register(self, data: bytes, form: Registration, caller: Principal) -> ModelVersionOut:
        return await self.registry.register(data, form, caller)

    async def promote(
        self, name: str, version: str, to: ModelStatus, caller: Principal
    ) -> list[ModelVersionOut]:
        return await self.registry.promote(name, version, to, caller)

    async def rollback(
        self, name: str, to_version: str, caller: Principal
    ) -> list[ModelVersionOut]:
        return await self.registry.rollback(name, to_version, caller)

    async def routes(self) -> list[RouteOut]:
        return await self.registry.routes()

    async def route(self, endpoint: str) -> RouteOut:
        return await self.registry.route(endpoint)

    async def set_route(self, endpoint: str, config: RouteConfig, caller: Principal) -> RouteOut:
        return await self.registry.set_route(endpoint, config, caller)

    async def delete_route(self, endpoint: str, caller: Principal) -> None:
        await self.registry.delete_route(endpoint, caller)

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        return await self.registry.route_stats(endpoint, limit, since)


class RegistryClient:
    """The ingress's ``Registry``: the registry deployment through its handle."""

    def __init__(self, registry: DeploymentHandle) -> None:
        self.handle = registry
        self.upload = Hop(registry)  # a model file can be tens of MB

    async def versions(self, name: str | None = None) -> list[ModelVersionOut]:
        return await self._call(self.handle, "versions", name)

    async def register(self, data: bytes, form: Registration, caller: Principal) -> ModelVersionOut:
        return await self._call(self.upload(len(data)), "register", data, form, caller)

    async def promote(
        self, name: str, version: str, to: ModelStatus, caller: Principal
    ) -> list[ModelVersionOut]:
        return await self._call(self.handle, "promote", name, version, to, caller)

    async def rollback(
        self, name: str, to_version: str, caller: Principal
    ) -> list[ModelVersionOut]:
        return await self._call(self.handle, "rollback", name, to_version, caller)

    async def routes(self) -> list[RouteOut]:
        return await self._call(self.handle, "routes")

    async def route(self, endpoint: str) -> RouteOut:
        return await self._call(self.handle, "route", endpoint)

    async def set_route(self, endpoint: str, config: RouteConfig, caller: Principal) -> RouteOut:
        return await self._call(self.handle, "set_route", endpoint, config, caller)

    async def delete_route(self, endpoint: str, caller: Principal) -> None:
        await self._call(self.handle, "delete_route", endpoint, caller)

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        return await self._call(self.handle, "route_stats", endpoint, limit, since)

    @staticmethod
    async def _call(handle: DeploymentHandle, method: str, *args: Any) -> Any:
        return await call(handle, method, *args, unavailable=UNAVAILABLE)
