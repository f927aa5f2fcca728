"""The audit trail in the database, as the single writer process holds it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime

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


async def open_trail(settings: Settings) -> tuple[Database, ChainWriter]:
    """The database and its started writer: what a ``DatabaseTrail`` is made of."""
    credentials = load_credentials(settings, need={"audit_signing_key"})
    database = await open_database(settings)
    writer = ChainWriter.from_settings(settings, credentials, database)
    # NOTE: a writer that stands by or halts still serves reads and verification,
    # so an auditor can see why; its writes answer 503 with the reason.
    with contextlib.suppress(ServiceUnavailable):
        await writer.start()
    return database, writer


class DatabaseTrail:
    """``AuditTrail`` over the database. One process writes: the audit-writer deployment."""

    def __init__(self, database: Database, writer: ChainWriter) -> None:
        self.database = database
        self.writer = writer

    @classmethod
    async def open(cls, settings: Settings) -> DatabaseTrail:
        return cls(*await open_trail(settings))

    async def record(self, events: Sequence[AuditEvent]) -> None:
        try:
            await self.writer.write(events)
        except IntegrityError:
            raise Conflict("the change conflicts with a stored record") from None

    async def result(self, inference_id: str) -> StoredResult | None:
        row = await self.writer.store.result(inference_id)
        return StoredResult.model_validate(row) if row is not None else None

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        rows = await self.writer.store.read(after_seq, limit)
        return [AuditRecord.model_validate(row) for row in rows]

    async def verify(self, full: bool = False) -> ChainVerification:
        return ChainVerification.model_validate(await self.writer.verify(full=full))

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        await self.writer.check_tables()
        rows = await self.writer.store.model_versions(name)
        return [ModelVersionOut.model_validate(row) for row in rows]

    async def routes(self) -> list[RouteOut]:
        await self.writer.check_tables()
        rows = await self.writer.store.routes()
        return [
            RouteOut.stored(row.endpoint, row.config, row.updated_by, row.updated_at)
            for row in rows
        ]

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        results = await self.writer.store.routed_results(endpoint, limit, since)
        # NOTE: percentiles over up to 10,000 results are CPU work: off the writer's event
        # loop, so commits go on meanwhile.
        return await asyncio.to_thread(summarize, endpoint, results)

    async def close(self) -> None:
        """Sign the tail, then disconnect."""
        try:
            await self.writer.close()
        finally:
            await self.database.close()
