"""What the HTTP layer needs from the audit trail, and the in-memory one for tests.

``record`` returns only once the events (and their results) are durable: a route
answers 200 after it. The Ray app's trail is the audit-writer deployment
(``deployments/audit_writer.py``) over the database; ``MemoryTrail`` keeps the same
chain in this process, for the in-process app the HTTP tests drive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from serve_app.audit.bounds import refusal
from serve_app.audit.chain import GENESIS_HASH as GENESIS
from serve_app.audit.chain import ChainedEntry, link, verify
from serve_app.audit.events import AuditEvent, utc_now
from serve_app.audit.store import check_page
from serve_app.canonical import normalized
from serve_app.catalog.status import ModelStatus
from serve_app.errors import Conflict, MedAIError, NotFound, ServiceUnavailable
from serve_app.records.model import ModelChange, ModelVersionRecord
from serve_app.records.route import RouteChange
from serve_app.routing.stats import summarize
from serve_app.schemas.audit import AuditRecord, ChainVerification, StoredResult
from serve_app.schemas.models import ModelVersionOut
from serve_app.schemas.routes import RouteOut, RouteStats


class AuditTrail(Protocol):
    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Commit ``events`` and their results; raise ``ServiceUnavailable`` if it cannot."""
        ...

    async def result(self, inference_id: str) -> StoredResult | None: ...

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        """Entries with seq > ``after_seq``, oldest first, at most ``limit``."""
        ...

    async def verify(self, full: bool = False) -> ChainVerification:
        """The trail checked from the last verification on, or from the start if ``full``."""
        ...

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        """Registered model versions, oldest first; only ``name``'s when given."""
        ...

    async def routes(self) -> list[RouteOut]:
        """Every endpoint's route, by endpoint."""
        ...

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        """Per-arm statistics over ``endpoint``'s newest ``limit`` results (since ``since``)."""
        ...


class MemoryTrail:
    """The hash chain and results in this process's memory; lost when it ends."""

    def __init__(self) -> None:
        self.chain: list[ChainedEntry] = []
        self.results: dict[str, StoredResult] = {}
        self.models: list[ModelVersionOut] = []
        self.routed: dict[str, RouteOut] = {}
        self._lock = asyncio.Lock()

    async def record(self, events: Sequence[AuditEvent]) -> None:
        if (error := refusal(events)) is not None:
            raise error  # what the database's writer would refuse
        async with self._lock:
            now = utc_now()
            # NOTE: all model changes first, as the database's transaction would: a
            # refused one leaves nothing of the call behind.
            models, routed = list(self.models), dict(self.routed)
            try:
                for event in events:
                    if event.model is not None:
                        self._apply(event.model, now)
                    if event.route is not None:
                        self._route(event.route, event.actor, now)
            except MedAIError:
                self.models, self.routed = models, routed
                raise
            for event in events:
                prev = self.chain[-1].entry_hash if self.chain else GENESIS
                entry = event.entry(len(self.chain) + 1, now, normalized(event.details))
                self.chain.append(link(prev, entry))
                if (r := event.result) is not None:
                    self.results[r.inference_id] = StoredResult.model_validate(
                        vars(r) | {"outputs": list(r.outputs), "created_at": now}
                    )

    def _apply(self, change: ModelChange, now: datetime) -> None:
        if isinstance(change, ModelVersionRecord):
            if any((m.model_name, m.version) == (change.model_name, change.version)
                   for m in self.models):  # fmt: skip
                raise Conflict(f"{change.model_name}:{change.version} is already registered")
            self.models.append(ModelVersionOut.model_validate(vars(change) | {"created_at": now}))
            return
        for i, m in enumerate(self.models):
            if (m.model_name, m.version) == (change.model_name, change.version):
                self.models[i] = m.model_copy(update={"status": ModelStatus(change.status)})
                return
        raise NotFound(
            f"model {change.model_name}:{change.version} is not registered",
            field="model",
            rule="registered",
        )

    def _route(self, change: RouteChange, actor: str, now: datetime) -> None:
        if change.config is None:
            self.routed.pop(change.endpoint, None)
            return
        self.routed[change.endpoint] = RouteOut.stored(change.endpoint, change.config, actor, now)

    async def result(self, inference_id: str) -> StoredResult | None:
        return self.results.get(inference_id)

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        check_page(after_seq, limit)
        return [AuditRecord.model_validate(e) for e in self.chain[after_seq : after_seq + limit]]

    async def verify(self, full: bool = False) -> ChainVerification:
        return ChainVerification.model_validate(verify(self.chain))

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        return [m for m in self.models if name is None or m.model_name == name]

    async def routes(self) -> list[RouteOut]:
        return [self.routed[endpoint] for endpoint in sorted(self.routed)]

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        newest = reversed(list(self.results.values()))  # inserted oldest first
        results = [
            r for r in newest if r.endpoint == endpoint and (since is None or r.created_at >= since)
        ][:limit]
        return summarize(endpoint, results)


class DisabledTrail:
    """No persistence (``audit.enabled: false``, benchmarks only): nothing is kept."""

    async def record(self, events: Sequence[AuditEvent]) -> None:
        return None

    async def result(self, inference_id: str) -> StoredResult | None:
        raise ServiceUnavailable("results are not stored: audit.enabled is false")

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        raise ServiceUnavailable("the audit trail is off: audit.enabled is false")

    async def verify(self, full: bool = False) -> ChainVerification:
        raise ServiceUnavailable("the audit trail is off: audit.enabled is false")

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        raise ServiceUnavailable("the registry's records are off: audit.enabled is false")

    async def routes(self) -> list[RouteOut]:
        raise ServiceUnavailable("routes are not kept: audit.enabled is false")

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        raise ServiceUnavailable("results are not stored: audit.enabled is false")
