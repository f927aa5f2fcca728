"""Group commit fails a bad caller alone (security review, finding 3), on both databases.

The writer deployment's own ``_commit`` runs here on a real ``DatabaseTrail``: callers'
events arrive as ``serve.batch`` hands them over, one list per caller, and the bad ones
are what a served request really produces: a NaN confidence (a NaN-slope DICOM), a field
longer than its column (a 300-character token ``sub``), a reused inference id.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from typing import Any

import asyncpg
import pytest

from deployments.audit_writer import AuditWriter as WriterDeployment
from serve_app.audit.database_trail import DatabaseTrail
from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.store import AuditStore
from serve_app.errors import Conflict, InvalidInput, MedAIError, ServiceUnavailable
from serve_app.settings import Settings
from serve_app.storage import open_database
from serve_app.storage.models import AuditLog
from tests.storage.audit_builders import record


def answer(i: int, actor: str = "dr-who", **changes: Any) -> AuditEvent:
    return AuditEvent.inference(record(i, requested_by=actor, **changes))


def failed_login() -> AuditEvent:
    """An event nothing in the database keys but its delivery key."""
    return AuditEvent(actor="anonymous", action=AuditAction.AUTH_FAILURE, object_type="token")


def entries_of(settings: Settings) -> list[AuditLog]:
    async def main() -> list[AuditLog]:
        async with await open_database(settings) as db:
            return await AuditStore(db).read()

    return asyncio.run(main())


class Writer(WriterDeployment.func_or_class):  # type: ignore[misc,name-defined]
    """The deployment's class without Ray: ``_commit`` is exactly what its batch calls."""

    def __init__(self, trail: DatabaseTrail) -> None:
        vars(self).update(vars(trail))  # the open trail's database and writer

    def __del__(self) -> None:
        pass  # the test closes the trail itself


def commit(settings: Settings, *rounds: list[list[AuditEvent]]) -> Any:
    async def main() -> tuple[list[list[MedAIError | None]], dict[str, bool], bool]:
        trail = await DatabaseTrail.open(settings)
        try:
            writer = Writer(trail)
            outcomes = [await writer._commit(batches) for batches in rounds]
            ids = {f"inf-{i}" for i in range(10)}
            stored = {i: await trail.result(i) is not None for i in sorted(ids)}
            return outcomes, stored, (await trail.verify()).valid
        finally:
            await trail.close()

    return asyncio.run(main())


def test_bad_events_fail_their_callers_alone(storage_settings: Settings) -> None:
    (errors,), stored, valid = commit(
        storage_settings,
        [
            [answer(1)],
            [answer(2, confidence=math.nan)],
            [answer(3), answer(4)],
            [answer(5, actor="x" * 300)],
            [answer(6, prediction="p" * 300)],
            [answer(7, outputs=(0.5, math.inf))],
            [answer(8)],
        ],
    )
    assert [e is None for e in errors] == [True, False, True, False, False, False, True]
    assert all(isinstance(e, InvalidInput) for e in errors if e is not None)
    assert [(e.field, e.rule) for e in errors if e is not None] == [
        ("confidence", "finite"),
        ("actor", "max-length"),
        ("prediction", "max-length"),
        ("outputs", "finite"),
    ]
    assert {i for i, kept in stored.items() if kept} == {"inf-1", "inf-3", "inf-4", "inf-8"}
    assert valid


def test_a_conflict_only_the_database_sees_fails_its_caller_alone(
    storage_settings: Settings,
) -> None:
    (first, second), stored, valid = commit(
        storage_settings,
        [[answer(1)]],
        [[answer(2)], [answer(1)], [answer(3)]],  # inf-1 again: the primary key refuses it
    )
    assert first == [None]
    assert second[0] is None and second[2] is None
    assert isinstance(second[1], Conflict)
    assert {i for i, kept in stored.items() if kept} == {"inf-1", "inf-2", "inf-3"}
    assert valid


def test_a_message_delivered_again_is_committed_once_and_answered_as_stored(
    storage_settings: Settings,
) -> None:
    """Ray's router re-sends a call whose replica died before acknowledging it, though the
    replica may have committed it: the same events (the same delivery keys) arrive again,
    beside callers the dead replica never reached."""
    delivered = [answer(1)], [failed_login(), answer(2)]
    (first, again), stored, valid = commit(
        storage_settings, list(delivered), [*delivered, [answer(3)], [failed_login()]]
    )
    assert first == [None, None]
    assert again == [None, None, None, None]
    assert {i for i, kept in stored.items() if kept} == {"inf-1", "inf-2", "inf-3"}
    assert valid  # an inference with two entries would not verify
    entries = entries_of(storage_settings)
    actions = ["inference", "auth.failure", "inference", "inference", "auth.failure"]
    assert [e.action for e in entries] == actions
    assert len({e.event_id for e in entries}) == 5


def test_a_write_stuck_behind_a_lock_fails_with_503_in_bounded_time(
    storage_settings: Settings, database_url: str
) -> None:
    """A transaction someone left holding the chain's lock costs a 503 (nothing stored)
    within ``storage.lock_timeout_s`` on PostgreSQL, SQLite's busy timeout on SQLite."""
    settings = storage_settings.model_copy(
        update={"storage": storage_settings.storage.model_copy(update={"lock_timeout_s": 0.5})}
    )

    async def main() -> float:
        async with await open_database(settings) as db:
            holder = await hold_the_chain(database_url)
            try:
                started = time.monotonic()
                with pytest.raises(ServiceUnavailable):
                    await AuditStore(db).append([answer(1)])
                return time.monotonic() - started
            finally:
                await holder()

    assert asyncio.run(main()) < 20


async def hold_the_chain(database_url: str) -> Any:
    """Take the audit table's lock from another connection; returns its release."""
    if database_url.startswith("sqlite://"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite://"), timeout=0)
        connection.execute("BEGIN IMMEDIATE")

        async def release_sqlite() -> None:
            connection.rollback()
            connection.close()

        return release_sqlite
    url, _, query = database_url.partition("?schema=")
    connection = await asyncpg.connect(url, server_settings={"search_path": query})
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute('LOCK TABLE "audit_log" IN ACCESS EXCLUSIVE MODE')

    async def release_postgres() -> None:
        await transaction.rollback()
        await connection.close()

    return release_postgres
