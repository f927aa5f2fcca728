"""The audit trail and results in the database: group-commit appends, reads, verification.

One ``append`` is one transaction: it locks the chain, reads its head, links the batch's
entries after it and inserts them with the batch's result rows. The lock (a table lock
on PostgreSQL, SQLite's write lock) makes appends from any number of tasks or processes
take turns, so seqs stay gapless and the chain linear; a single writer keeps it cheap.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError
from tortoise.functions import Count

from serve_app.audit.bounds import refusal
from serve_app.audit.chain import (
    GENESIS_HASH,
    link,
    utc_iso,
)
from serve_app.audit.events import AuditAction, AuditEvent, utc_now
from serve_app.audit.replay import REPLAYED
from serve_app.canonical import canonical_json, normalized
from serve_app.errors import InvalidInput, ServiceUnavailable
from serve_app.records.inference import InferenceRecord
from serve_app.storage.changes import apply_model_change, apply_route_change
from serve_app.storage.database import Database
from serve_app.storage.models import AuditLog, InferenceResult, ModelVersion, Route

MAX_READ = 1000
"""Most entries one ``read`` returns."""
RESULT_DIGEST = "result_sha256"
"""Key, in an inference entry's details, of the SHA-256 of its result row."""
RESULT_FIELDS = (
    "inference_id",
    "batch_id",
    "model_name",
    "model_version",
    "requested_by",
    "patient_ref",
    "outputs",
    "confidence",
    "prediction",
    "threshold",
    "latency_ms",
    "created_at",
)
OPTIONAL_RESULT_FIELDS = (
    "positive",
    "endpoint",
    "arm",
    "shadow_of",
    "findings",
    "model_sha256",
    "source",
)
"""Schema 2's and 3's fields join the digest only when set, so older rows verify unchanged;
``findings`` carries a segmentation's masks, so the entry hashes them too."""


class HeadMoved(ServiceUnavailable):
    """The chain's head is not the one this writer committed last: someone else wrote."""


OUTAGES = (
    DBConnectionError,
    OperationalError,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
"""What says the store, not the batch, failed: the whole batch is a 503, nothing stored.
``QueryCanceledError`` and ``LockNotAvailableError`` are the write's timeouts."""


def _refused_value(error: OperationalError) -> bool:
    """Whether the database refused a value of the batch (too long, out of range)."""
    return isinstance(error.__cause__, asyncpg.DataError | sqlite3.DataError)


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, round(seconds * 1000))  # 0: no limit


def check_page(after_seq: int, limit: int) -> None:
    """``InvalidInput`` unless ``limit`` is 1..MAX_READ and ``after_seq`` not negative."""
    if not 1 <= limit <= MAX_READ:
        raise InvalidInput(f"limit {limit} is outside 1..{MAX_READ}", "limit", "range")
    if after_seq < 0:
        raise InvalidInput(f"after_seq {after_seq} is negative", "after_seq", "range")


def result_digest(result: InferenceResult) -> str:
    fields: dict[str, Any] = {name: getattr(result, name) for name in RESULT_FIELDS}
    fields["created_at"] = utc_iso(result.created_at)
    for name in OPTIONAL_RESULT_FIELDS:
        if (value := getattr(result, name)) is not None:
            fields[name] = value
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


STORED = tuple(InferenceResult._meta.fields_map.keys() - {"created_at"})
"""The record's fields a result row keeps (the columns; ``created_at`` is the commit's)."""


def _result_row(record: InferenceRecord, now: datetime) -> InferenceResult:
    fields = {name: getattr(record, name) for name in STORED}
    fields["outputs"] = normalized(record.outputs)
    for name in ("findings", "source"):
        if (value := getattr(record, name)) is not None:
            fields[name] = normalized(value)
    return InferenceResult(**fields, created_at=now)


class AuditStore:
    def __init__(self, database: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self.clock = clock

    async def append(
        self, events: Sequence[AuditEvent], expected_head: tuple[int, str] | None = None
    ) -> list[AuditLog]:
        """Chain and commit ``events`` (and their results) in one transaction.

        Returns the committed rows in seq order. Raises ``ServiceUnavailable`` when the
        database cannot be reached, and ``HeadMoved`` when ``expected_head`` is given and
        the chain's head is another; nothing of the batch is then stored.
        """
        if not events:
            return []
        if (error := refusal(events)) is not None:
            raise error
        now = self.clock()
        try:
            async with self._database.transaction() as tx:
                await self._lock_chain(tx)
                seq, prev_hash = await self._head(tx)
                if expected_head is not None and (seq, prev_hash) != expected_head:
                    raise HeadMoved(
                        f"the audit chain's head is seq {seq}, not the seq {expected_head[0]}"
                        " this writer committed last: the trail was written underneath it"
                    )
                results, entries = [], []
                for offset, event in enumerate(events, start=1):
                    details = normalized(event.details)
                    if event.result is not None:
                        result = _result_row(event.result, now)
                        details[RESULT_DIGEST] = result_digest(result)
                        results.append(result)
                    entry = link(prev_hash, event.entry(seq + offset, now, details))
                    entries.append(AuditLog(**vars(entry), event_id=event.event_id))
                    prev_hash = entry.entry_hash
                if results:
                    await InferenceResult.bulk_create(results, using_db=tx)
                for event in events:
                    if event.model is not None:
                        await apply_model_change(event.model, tx)
                    if event.route is not None:
                        await apply_route_change(event.route, event.actor, now, tx)
                await AuditLog.bulk_create(entries, using_db=tx)
        except IntegrityError:
            # NOTE: tortoise's IntegrityError is an OperationalError, but a broken
            # constraint (a reused inference_id) is a bug that no retry gets past.
            raise
        except OUTAGES as error:
            if isinstance(error, OperationalError) and _refused_value(error):
                raise  # the batch's own data, not the store: group commit isolates it
            raise ServiceUnavailable("the audit store is unavailable") from error
        return entries

    async def _lock_chain(self, tx: BaseDBAsyncClient) -> None:
        if self._database.dialect == "postgres":
            # NOTE: bounded waits: a stuck transaction holding the lock costs a 503 (this
            # transaction rolls back, nothing is stored), not a queue that never moves.
            # SHARE ROW EXCLUSIVE conflicts with itself and with writes, not with reads:
            # appends queue here and each one then reads the committed head.
            await tx.execute_script(
                f"SET LOCAL lock_timeout = {_ms(self._database.lock_timeout_s)}; "
                f"SET LOCAL statement_timeout = {_ms(self._database.statement_timeout_s)}; "
                'LOCK TABLE "audit_log" IN SHARE ROW EXCLUSIVE MODE'
            )
        else:
            # NOTE: a write as the transaction's first statement takes SQLite's write lock
            # now, so another process's append waits instead of reading a stale head.
            await tx.execute_query('UPDATE "audit_log" SET "seq" = "seq" WHERE 0')

    @staticmethod
    async def _head(client: BaseDBAsyncClient | None = None) -> tuple[int, str]:
        rows = (
            await AuditLog.all()
            .using_db(client)
            .order_by("-seq")
            .limit(1)
            .values_list("seq", "entry_hash")
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS_HASH)

    async def head(self) -> tuple[int, str]:
        """``(seq, entry_hash)`` of the newest committed entry; ``(0, GENESIS_HASH)`` if none."""
        return await self._head()

    async def read(
        self,
        after_seq: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[AuditLog]:
        """Entries with seq > ``after_seq``, oldest first, at most ``limit`` (1..1000); only
        ``action``'s and ``actor``'s when given."""
        check_page(after_seq, limit)
        query = AuditLog.filter(seq__gt=after_seq)
        if action is not None:
            query = query.filter(action=action)
        if actor is not None:
            query = query.filter(actor=actor)
        return await query.order_by("seq").limit(limit)

    async def delivered(self, events: Sequence[AuditEvent]) -> bool:
        """Whether every one of ``events`` is committed already (by its delivery key)."""
        keys = {event.event_id for event in events}
        return await AuditLog.filter(event_id__in=list(keys)).count() == len(keys)

    async def result(self, inference_id: str) -> InferenceResult | None:
        return await InferenceResult.get_or_none(inference_id=inference_id)

    async def results_by(self, subject: str, limit: int) -> list[InferenceResult]:
        """The newest ``limit`` answers ``subject`` asked for (shadow copies are no answer),
        newest first."""
        query = InferenceResult.filter(requested_by=subject, shadow_of__isnull=True)
        return await query.order_by("-created_at").limit(limit)

    async def model_versions(self, name: str | None = None) -> list[ModelVersion]:
        """Registered versions, oldest first; only ``name``'s when given."""
        query = ModelVersion.all() if name is None else ModelVersion.filter(model_name=name)
        return await query.order_by("id")

    async def routes(self) -> list[Route]:
        return await Route.all().order_by("endpoint")

    async def routed_results(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> list[InferenceResult]:
        """The newest ``limit`` results ``endpoint``'s route chose or shadowed (stored at or
        after ``since``), newest first."""
        query = InferenceResult.filter(endpoint=endpoint)
        if since is not None:
            query = query.filter(created_at__gte=since)
        return await query.order_by("-created_at").limit(limit)

    async def entries_from(self, seq: int, page_size: int = 1000) -> AsyncIterator[list[AuditLog]]:
        """Entries with seq >= ``seq``, oldest first, a page at a time."""
        after = seq - 1
        while page := await AuditLog.filter(seq__gt=after).order_by("seq").limit(page_size):
            yield page
            after = page[-1].seq

    async def tables(self) -> tuple[dict[str, tuple[str, str]], dict[str, Any]]:
        """``model_versions`` as ref to (status, hash) and ``routes`` as endpoint to config."""
        versions = {
            f"{row.model_name}:{row.version}": (str(row.status), row.file_hash)
            for row in await ModelVersion.all()
        }
        return versions, {row.endpoint: row.config for row in await Route.all()}

    async def replayed_entries(self, after_seq: int) -> list[AuditLog]:
        """The registry's and routes' entries after ``after_seq``, oldest first."""
        return await AuditLog.filter(seq__gt=after_seq, action__in=REPLAYED).order_by("seq")

    async def result_count(self) -> int:
        return await InferenceResult.all().count()

    async def repeated_inference(self, inference_ids: Sequence[str] | None = None) -> str | None:
        """An inference id with more than one audit entry (among ``inference_ids``)."""
        query = AuditLog.filter(action=AuditAction.INFERENCE)
        if inference_ids is not None:
            if not inference_ids:
                return None
            query = query.filter(object_id__in=list(inference_ids))
        rows = await (
            query.annotate(entries=Count("seq"))
            .group_by("object_id")
            .filter(entries__gt=1)
            .limit(1)
            .values_list("object_id", flat=True)
        )
        return str(rows[0]) if rows else None

    async def hashes_at(self, seqs: Sequence[int]) -> dict[int, str]:
        """Stored ``entry_hash`` of each of ``seqs`` that exists."""
        rows = await AuditLog.filter(seq__in=list(seqs)).values_list("seq", "entry_hash")
        return {int(seq): str(entry_hash) for seq, entry_hash in rows}


def has_result(entry: AuditLog) -> bool:
    return (
        entry.action == AuditAction.INFERENCE
        and isinstance(entry.details, dict)
        and RESULT_DIGEST in entry.details
    )


async def check_results(page: Sequence[AuditLog]) -> tuple[int, str] | None:
    """The first entry of ``page`` whose result row is missing or altered."""
    expected = {entry.object_id: entry for entry in page if has_result(entry)}
    if not expected:
        return None
    rows = await InferenceResult.filter(inference_id__in=list(expected))
    found = {row.inference_id: row for row in rows}
    for inference_id, entry in expected.items():
        row = found.get(inference_id) if inference_id is not None else None
        if row is None:
            return entry.seq, f"seq {entry.seq}: the result of inference {inference_id} is missing"
        if result_digest(row) != entry.details[RESULT_DIGEST]:
            return entry.seq, f"seq {entry.seq}: the result of inference {inference_id} was altered"
    return None
