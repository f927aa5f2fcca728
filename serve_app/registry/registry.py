"""Registering model versions and moving them through their lifecycle, each step audited.

The store keeps the bytes (content-addressed) and each version's spec; the trail keeps
the ``ModelVersion`` rows, whose every change is committed with its audit entry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from serve_app.audit.events import AuditAction, AuditEvent, ModelChange, ModelVersionRecord
from serve_app.audit.trail import AuditTrail
from serve_app.auth.tokens import Principal
from serve_app.errors import Conflict
from serve_app.registry.spec import ModelSpec
from serve_app.registry.status import promotion, rollback
from serve_app.registry.store import ModelStore
from serve_app.runtime.onnx_model import inspect_model
from serve_app.schemas.models import ModelVersionOut
from serve_app.storage.models import ModelStatus


@dataclass(frozen=True)
class Registration:
    """What an ML engineer says of an upload; the rest is read from the file."""

    name: str
    version: str
    clinical_domain: str | None = None
    fda_submission_id: str | None = None
    iso_certification: str | None = None


def _inspect(data: bytes, name: str, version: str) -> tuple[ModelSpec, float]:
    started = time.perf_counter()
    spec = inspect_model(data, name, version)  # loads and runs it on a zero input
    return spec, round((time.perf_counter() - started) * 1000, 3)


class ModelRegistry:
    """One per process that changes the catalog (the registry deployment; tests)."""

    def __init__(self, store: ModelStore, trail: AuditTrail) -> None:
        self.store = store
        self.trail = trail
        self._lock: asyncio.Lock | None = None  # made inside the running loop

    @property
    def lock(self) -> asyncio.Lock:
        # NOTE: changes are checked against the records, then recorded: one at a time.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def versions(self, name: str | None = None) -> list[ModelVersionOut]:
        return await self.trail.model_versions(name)

    async def register(self, data: bytes, form: Registration, caller: Principal) -> ModelVersionOut:
        """Hash, inspect and prove the file runs, store it, then record it as development."""
        spec, latency_ms = await asyncio.to_thread(_inspect, data, form.name, form.version)
        async with self.lock:
            if any(v.version == form.version for v in await self.versions(form.name)):
                raise Conflict(
                    f"{spec.ref} is already registered; register a new version",
                    field="version",
                    rule="unique",
                )
            await asyncio.to_thread(self.store.add, data, spec)
            record = ModelVersionRecord(
                model_name=spec.name,
                version=spec.version,
                file_path=str(self.store.blob_path(spec.sha256)),
                file_hash=spec.sha256,
                file_size_bytes=spec.size_bytes,
                input_shape=spec.input_shape,
                output_shape=spec.output_shape,
                inference_latency_ms=latency_ms,
                clinical_domain=form.clinical_domain or spec.metadata.clinical_domain,
                confidence_threshold=spec.metadata.threshold,
                fda_submission_id=form.fda_submission_id,
                iso_certification=form.iso_certification,
                status=ModelStatus.DEVELOPMENT,
            )
            details = {"sha256": spec.sha256, "size_bytes": spec.size_bytes}
            await self._record(caller, AuditAction.MODEL_REGISTER, [record], details)
        return await self._version(spec.name, spec.version)

    async def promote(
        self, name: str, version: str, to: ModelStatus, caller: Principal
    ) -> list[ModelVersionOut]:
        """Move ``name:version`` to ``to``; to production retires the version it replaces."""
        async with self.lock:
            changes = promotion(await self.versions(name), name, version, to)
            await self._record(caller, AuditAction.MODEL_PROMOTE, changes, {"to": str(to)})
        return await self.versions(name)

    async def rollback(
        self, name: str, to_version: str, caller: Principal
    ) -> list[ModelVersionOut]:
        """Serve ``to_version`` again in place of the production version."""
        async with self.lock:
            changes = rollback(await self.versions(name), name, to_version)
            details = {"to_version": to_version}
            await self._record(caller, AuditAction.MODEL_ROLLBACK, changes, details)
        return await self.versions(name)

    async def _record(
        self, caller: Principal, action: AuditAction, changes: list[ModelChange], details: dict
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


class Registry(Protocol):
    """What the HTTP layer needs: ``ModelRegistry`` in process, its deployment behind Ray."""

    async def versions(self, name: str | None = None) -> list[ModelVersionOut]: ...
    async def register(
        self, data: bytes, form: Registration, caller: Principal
    ) -> ModelVersionOut: ...
    async def promote(
        self, name: str, version: str, to: ModelStatus, caller: Principal
    ) -> list[ModelVersionOut]: ...
    async def rollback(
        self, name: str, to_version: str, caller: Principal
    ) -> list[ModelVersionOut]: ...
