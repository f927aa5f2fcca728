"""Registering model versions and moving them through their lifecycle, each step audited.

The store keeps the bytes (content-addressed) and each version's spec; the trail keeps
the ``ModelVersion`` rows, whose every change is committed with its audit entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.trail import AuditTrail
from serve_app.auth.tokens import Principal
from serve_app.catalog.routes import RouteConfig, split_ref
from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.status import ModelStatus
from serve_app.catalog.store import ModelStore, TamperedModel
from serve_app.errors import Conflict, NotFound
from serve_app.records.model import ModelChange, ModelVersionRecord
from serve_app.records.route import RouteChange
from serve_app.registry.status import promotion, rollback
from serve_app.routing.admission import (
    check_loaded,
    check_one_kind,
    check_retirements,
    check_route,
    route_refs,
)
from serve_app.routing.plan import ServingPlan
from serve_app.runtime.inspection import InspectionLimits, inspect_in_child
from serve_app.runtime.onnx_guard import refuse_stored_external_data
from serve_app.schemas.models import ModelVersionOut
from serve_app.schemas.routes import RouteOut, RouteStats


@dataclass(frozen=True)
class Registration:
    """What an ML engineer says of an upload; the rest is read from the file."""

    name: str
    version: str
    clinical_domain: str | None = None
    fda_submission_id: str | None = None
    iso_certification: str | None = None


SYSTEM = "system"
"""The actor of what the platform does by itself (adopting the models it starts with)."""


class ModelRegistry:
    """One per process that changes the catalog (the registry deployment; tests).

    ``defaults`` are the served models' versions at start. A served model whose name has
    no registered version yet is adopted: recorded as production. From then on each
    served model answers with its production version, and each endpoint with a route
    by its arms; ``serving()`` gives that plan.
    """

    def __init__(
        self,
        store: ModelStore,
        trail: AuditTrail,
        defaults: Mapping[str, ModelSpec],
        on_change: Callable[[ServingPlan], None] | None = None,
        *,
        max_loaded_versions: int,
        inspection: InspectionLimits,
    ) -> None:
        self.store = store
        self.max_loaded_versions = max_loaded_versions
        self.inspection = inspection
        self.trail = trail
        self.defaults = dict(defaults)
        self._plan = ServingPlan(dict(defaults))
        self._on_change = on_change
        self._started = False
        self._lock: asyncio.Lock | None = None  # made inside the running loop

    @property
    def lock(self) -> asyncio.Lock:
        # NOTE: changes are checked against the records, then recorded: one at a time.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def start(self) -> None:
        """Adopt the served models the records do not know, then learn what serves."""
        async with self.lock:
            if self._started:
                return
            known = {v.model_name for v in await self.trail.model_versions()}
            for spec in self.defaults.values():
                if spec.name not in known:
                    record = _record(spec, ModelStatus.PRODUCTION, self.store)
                    adopted = {"sha256": spec.sha256, "adopted": True}
                    await self._record(Principal(SYSTEM, SYSTEM), AuditAction.MODEL_REGISTER,
                                       [record], adopted)  # fmt: skip
            await self._refresh()
            self._started = True

    async def serving(self) -> ServingPlan:
        """What answers now: each served model's version, and the routes."""
        await self._ensure_started()
        return self._plan

    async def _ensure_started(self) -> None:
        if not self._started:
            await self.start()

    async def _refresh(self) -> None:
        production = {
            v.model_name: v.version
            for v in await self.trail.model_versions()
            if v.status is ModelStatus.PRODUCTION and v.model_name in self.defaults
        }
        models = {
            name: self.store.resolve(name, production[name]) if name in production else default
            for name, default in self.defaults.items()
        }
        routes = {route.endpoint: route for route in await self.trail.routes()}
        refs = {ref for route in routes.values() for ref in route_refs(route)}
        routed = {ref: self.store.resolve(*split_ref(ref)) for ref in refs}
        plan = ServingPlan(models, routes, routed)
        if plan != self._plan:
            self._plan = plan
            if self._on_change is not None:
                self._on_change(plan)

    async def versions(self, name: str | None = None) -> list[ModelVersionOut]:
        await self._ensure_started()
        return await self.trail.model_versions(name)

    async def register(self, data: bytes, form: Registration, caller: Principal) -> ModelVersionOut:
        """Hash, inspect and prove the file runs (in a limited child process), store it,
        then record it as development; a record that cannot be written stores nothing."""
        spec, latency_ms = await asyncio.to_thread(
            inspect_in_child, data, form.name, form.version, self.inspection
        )
        await self._ensure_started()
        async with self.lock:
            recorded = await self.trail.model_versions(form.name)
            # NOTE: the catalog too: a file there without a record must not be replaced.
            # The same file again completes a registration whose record was never written.
            stored = [s for s in self.store.specs() if s.ref == spec.ref]
            replaced = any(s.sha256 != spec.sha256 for s in stored)
            record_of = next((v for v in recorded if v.version == form.version), None)
            if not stored and record_of is not None and record_of.file_hash == spec.sha256:
                # NOTE: recorded, though the caller was told otherwise (the trail's answer
                # was lost) and the entry rolled back: the same file restores the entry.
                await asyncio.to_thread(self.store.add, data, spec)
                return record_of
            if replaced or record_of is not None:
                raise Conflict(
                    f"{spec.ref} is already registered; register a new version",
                    field="version",
                    rule="unique",
                )
            await asyncio.to_thread(self.store.add, data, spec)
            record = _record(spec, ModelStatus.DEVELOPMENT, self.store, latency_ms, form)
            details = {"sha256": spec.sha256, "size_bytes": spec.size_bytes}
            try:
                await self._record(caller, AuditAction.MODEL_REGISTER, [record], details)
            except BaseException:
                # NOTE: no record, no catalog entry: else the retry is a 409 and the
                # version can never be promoted. The blob stays if another spec uses it.
                await asyncio.to_thread(self.store.remove, spec.ref)
                raise
        return await self._version(spec.name, spec.version)

    async def promote(
        self, name: str, version: str, to: ModelStatus, caller: Principal
    ) -> list[ModelVersionOut]:
        """Move ``name:version`` to ``to``; to production retires the version it replaces."""
        await self._ensure_started()
        async with self.lock:
            changes = promotion(await self.trail.model_versions(name), name, version, to)
            check_retirements(changes, self._plan.routes.values())
            if to is ModelStatus.PRODUCTION:
                await self._check_integrity(name, version, caller)
            await self._record(caller, AuditAction.MODEL_PROMOTE, changes, {"to": str(to)})
            await self._refresh()
        return await self.versions(name)

    async def rollback(
        self, name: str, to_version: str, caller: Principal
    ) -> list[ModelVersionOut]:
        """Serve ``to_version`` again in place of the production version."""
        await self._ensure_started()
        async with self.lock:
            changes = rollback(await self.trail.model_versions(name), name, to_version)
            check_retirements(changes, self._plan.routes.values())
            await self._check_integrity(name, to_version, caller)
            details = {"to_version": to_version}
            await self._record(caller, AuditAction.MODEL_ROLLBACK, changes, details)
            await self._refresh()
        return await self.versions(name)

    # NOTE: routes are read from the plan: this registry makes every change and refreshes
    # the plan from the records after each, so the plan is the records' current state.
    async def routes(self) -> list[RouteOut]:
        await self._ensure_started()
        return [self._plan.routes[endpoint] for endpoint in sorted(self._plan.routes)]

    async def route(self, endpoint: str) -> RouteOut:
        await self._ensure_started()
        if (route := self._plan.routes.get(endpoint)) is None:
            raise NotFound(f"no route for endpoint {endpoint}", field="endpoint", rule="routed")
        return route

    async def set_route(self, endpoint: str, config: RouteConfig, caller: Principal) -> RouteOut:
        """Route ``endpoint`` by ``config`` from now on: every version admitted and intact."""
        await self._ensure_started()
        async with self.lock:
            check_route(config, self.defaults, await self.trail.model_versions())
            production = [spec.ref for spec in self._plan.models.values()]
            routes = self._plan.routes.values()
            check_loaded(endpoint, config, routes, production, self.max_loaded_versions)
            check_one_kind(config, lambda ref: self.store.resolve(*split_ref(ref)).metadata.kind)
            for ref in route_refs(config):
                await self._check_integrity(*split_ref(ref), caller)
            details = config.model_dump(mode="json")
            await self._record_route(caller, RouteChange(endpoint, details), details)
            await self._refresh()
        return await self.route(endpoint)

    async def delete_route(self, endpoint: str, caller: Principal) -> None:
        """Serve ``endpoint`` as before its route (its model's production version, if any)."""
        await self._ensure_started()
        async with self.lock:
            await self.route(endpoint)
            await self._record_route(caller, RouteChange(endpoint, None), {"deleted": True})
            await self._refresh()

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        await self._ensure_started()
        stats = await self.trail.route_stats(endpoint, limit, since)
        if not stats.results:
            await self.route(endpoint)  # NOTE: a 404 only when it was never routed at all
        return stats

    async def _record_route(self, caller: Principal, change: RouteChange, details: dict) -> None:
        event = AuditEvent(
            actor=caller.subject,
            role=caller.role,
            action=AuditAction.ROUTE_CHANGE,
            object_type="route",
            object_id=change.endpoint,
            details=details,
            route=change,
        )
        await self.trail.record([event])

    async def _check_integrity(self, name: str, version: str, caller: Principal) -> None:
        """Refuse to serve a version whose file no longer matches its hash, or reads tensors
        from other files (stored before uploads were checked for that), and say so."""
        spec = self.store.resolve(name, version)

        def check() -> None:
            refuse_stored_external_data(self.store.read_verified(spec), spec.ref)

        try:
            await asyncio.to_thread(check)
        except TamperedModel as error:
            event = AuditEvent(
                actor=caller.subject,
                role=caller.role,
                action=AuditAction.MODEL_INTEGRITY_FAILURE,
                object_type="model",
                object_id=spec.ref,
                model_version=spec.ref,
                details={"sha256": spec.sha256, "detail": error.detail},
            )
            await self.trail.record([event])
            raise

    async def _record(
        self, caller: Principal, action: AuditAction, changes: Sequence[ModelChange], details: dict
    ) -> None:
        """One audit entry per changed version, all committed in one write."""
        await self.trail.record(
            [
                AuditEvent(
                    actor=caller.subject,
                    role=caller.role,
                    action=action,
                    object_type="model",
                    object_id=f"{c.model_name}:{c.version}",
                    model_version=f"{c.model_name}:{c.version}",
                    details={**details, "status": str(c.status)},
                    model=c,
                )
                for c in changes
            ]
        )

    async def _version(self, name: str, version: str) -> ModelVersionOut:
        (found,) = [v for v in await self.versions(name) if v.version == version]
        return found


def _record(
    spec: ModelSpec,
    status: ModelStatus,
    store: ModelStore,
    latency_ms: float | None = None,
    form: Registration | None = None,
) -> ModelVersionRecord:
    return ModelVersionRecord(
        model_name=spec.name,
        version=spec.version,
        file_path=str(store.blob_path(spec.sha256)),
        file_hash=spec.sha256,
        file_size_bytes=spec.size_bytes,
        input_shape=spec.input_shape,
        output_shape=spec.output_shape,
        inference_latency_ms=latency_ms,
        clinical_domain=(form and form.clinical_domain) or spec.metadata.clinical_domain,
        confidence_threshold=spec.metadata.threshold,
        fda_submission_id=form.fda_submission_id if form else None,
        iso_certification=form.iso_certification if form else None,
        status=status,
    )
