"""The audit trail in the database, as the single writer process holds it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import TypeVar

from tortoise.exceptions import IntegrityError

from serve_app.audit.events import AuditEvent
from serve_app.audit.writer import ChainWriter
from serve_app.auth.credentials import load_credentials
from serve_app.errors import Conflict, ServiceUnavailable
from serve_app.routing.stats import summarize
from serve_app.schemas.audit import AuditRecord, ChainVerification, StoredResult
from serve_app.schemas.models import ModelVersionOut
from serve_app.schemas.routes import RouteOut, RouteStats
from serve_app.settings import Settings
from serve_app.storage.database import Database, open_database

T = TypeVar("T")


async def open_trail(settings: Settings, process_wide: bool = True) -> tuple[Database, ChainWriter]:
    """The database and its started writer: what an open ``DatabaseTrail`` is made of."""
    credentials = load_credentials(settings, need={"audit_signing_key"})
    database = await open_database(settings, process_wide=process_wide)
    writer = ChainWriter.from_settings(settings, credentials, database)
    # NOTE: a writer that stands by or halts still serves reads and verification,
    # so an auditor can see why; its writes answer 503 with the reason.
    with contextlib.suppress(ServiceUnavailable):
        await database.run(writer.start)
    return database, writer


class DatabaseTrail:
    """``AuditTrail`` over the database. One process writes: the audit-writer deployment
    (its process's database), or an in-process app (a private database, see
    ``storage.database``).

    Made closed, ``start`` opens it (in the event loop that will use it) and ``close``
    ends it; a closed trail answers 503.
    """

    def __init__(self, settings: Settings, process_wide: bool = True) -> None:
        self.settings = settings
        self.process_wide = process_wide
        self._open: tuple[Database, ChainWriter] | None = None

    @classmethod
    async def open(cls, settings: Settings, process_wide: bool = True) -> DatabaseTrail:
        trail = cls(settings, process_wide)
        await trail.start()
        return trail

    async def start(self) -> None:
        if self._open is None:
            self._open = await open_trail(self.settings, self.process_wide)

    @property
    def database(self) -> Database:
        return self._opened()[0]

    @property
    def writer(self) -> ChainWriter:
        return self._opened()[1]

    def _opened(self) -> tuple[Database, ChainWriter]:
        if self._open is None:
            raise ServiceUnavailable("the audit trail is not open")
        return self._open

    async def record(self, events: Sequence[AuditEvent]) -> None:
        try:
            await self.database.run(lambda: self.writer.write(events))
        except IntegrityError:
            # NOTE: a message re-sent after a writer replica died (see AuditEvent.event_id)
            # whose events that replica committed: they are stored, as the caller asks.
            if await self.database.run(lambda: self.writer.store.delivered(events)):
                return
            raise Conflict("the change conflicts with a stored record") from None

    async def result(self, inference_id: str) -> StoredResult | None:
        row = await self.database.run(lambda: self.writer.store.result(inference_id))
        return StoredResult.model_validate(row) if row is not None else None

    async def results_by(self, subject: str, limit: int) -> list[StoredResult]:
        rows = await self.database.run(lambda: self.writer.store.results_by(subject, limit))
        return [StoredResult.model_validate(row) for row in rows]

    async def entries(
        self, after_seq: int, limit: int, action: str | None = None, actor: str | None = None
    ) -> list[AuditRecord]:
        rows = await self.database.run(
            lambda: self.writer.store.read(after_seq, limit, action, actor)
        )
        return [AuditRecord.model_validate(row) for row in rows]

    async def verify(self, full: bool = False) -> ChainVerification:
        verification = await self.database.run(lambda: self.writer.verify(full=full))
        return ChainVerification.model_validate(verification)

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        rows = await self.database.run(
            lambda: self._checked(self.writer.store.model_versions(name))
        )
        return [ModelVersionOut.model_validate(row) for row in rows]

    async def routes(self) -> list[RouteOut]:
        rows = await self.database.run(lambda: self._checked(self.writer.store.routes()))
        return [
            RouteOut.stored(row.endpoint, row.config, row.updated_by, row.updated_at)
            for row in rows
        ]

    async def _checked(self, rows: Awaitable[list[T]]) -> list[T]:
        """``rows`` once the tables that decide what serves agree with the trail."""
        await self.writer.check_tables()
        return await rows

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        store = self.writer.store
        results = await self.database.run(lambda: store.routed_results(endpoint, limit, since))
        # NOTE: percentiles over up to 10,000 results are CPU work: off the writer's event
        # loop, so commits go on meanwhile.
        return await asyncio.to_thread(summarize, endpoint, results)

    async def close(self) -> None:
        """Sign the tail, then disconnect; a closed trail stays closed."""
        if self._open is None:
            return
        database, writer = self._open
        self._open = None
        try:
            await database.run(writer.close)
        finally:
            await database.close()
