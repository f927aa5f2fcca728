"""AuditStore on SQLite and PostgreSQL: group-commit appends, results, reads."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from tortoise.exceptions import IntegrityError

from serve_app.audit.chain import GENESIS_HASH, Verification
from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.store import RESULT_DIGEST, AuditStore, result_digest
from serve_app.audit.verification import verify
from serve_app.canonical import canonical_json
from serve_app.errors import InvalidInput
from serve_app.settings import Settings
from serve_app.storage import Database, open_database
from serve_app.storage.models import AuditLog
from tests.storage.audit_builders import (
    PATIENT,
    T0,
    clock,
    event,
    inference,
    record,
    sql,
    verified,
)

# --- appending ---------------------------------------------------------------------------


def test_empty_store(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[Any, ...]:
        store = AuditStore(db)
        return await store.head(), await store.read(), await store.append([]), await verify(store)

    head, rows, appended, verification = with_db(scenario)
    assert (head, rows, appended) == ((0, GENESIS_HASH), [], [])
    assert verification == Verification(True, 0, GENESIS_HASH, None)


def test_append_gives_gapless_seqs_and_a_chain_that_verifies(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[list[AuditLog], list[AuditLog], Any, Any]:
        store = AuditStore(db, clock())
        appended = await store.append([event(i) for i in range(1, 6)])
        appended += await store.append([event(i) for i in range(6, 9)])
        return appended, await store.read(), await store.head(), await verified(store)

    appended, rows, head, verification = with_db(scenario)
    assert [row.seq for row in appended] == list(range(1, 9))
    assert [row.seq for row in rows] == list(range(1, 9))
    assert [row.entry_hash for row in rows] == [row.entry_hash for row in appended]
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(rows))
    assert head == (8, rows[-1].entry_hash)
    assert verification == Verification(True, 8, rows[-1].entry_hash, None)


def test_rows_read_back_as_written(with_db: Any) -> None:
    plus_two = timezone(timedelta(hours=2))
    awkward = AuditEvent(
        actor="Zoë",
        # NOTE: an action that changes no table (a route change is replayed against routes).
        action=AuditAction.AUDIT_READ,
        object_type="audit",
        details={"weights": (0.1, 0.9), "big": 1e300, "neg_zero": -0.0, "nested": {"b": 1}},
    )

    async def scenario(db: Database) -> tuple[AuditLog, Verification]:
        store = AuditStore(db, lambda: datetime(2026, 11, 25, 12, 0, 0, 7, tzinfo=plus_two))
        await store.append([awkward])
        return (await store.read())[0], await verify(store)

    row, verification = with_db(scenario)
    assert row.timestamp == datetime(2026, 11, 25, 10, 0, 0, 7, tzinfo=UTC)
    assert (row.actor, row.role, row.object_id, row.model_version) == ("Zoë", None, None, None)
    assert row.action == "audit.read"
    assert canonical_json(row.details) == (
        '{"big":1e+300,"neg_zero":-0.0,"nested":{"b":1},"weights":[0.1,0.9]}'
    )
    assert verification.valid


def test_inference_events_store_their_results_with_a_digest(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[list[AuditLog], list[Any]]:
        store = AuditStore(db, clock())
        rows = await store.append([inference(1), event(2), inference(3)])
        return rows, [await store.result(f"inf-{i}") for i in (1, 2, 3)]

    rows, (first, missing, third) = with_db(scenario)
    assert missing is None
    assert (first.inference_id, third.inference_id) == ("inf-1", "inf-3")
    assert first.requested_by == "dr-who"
    assert first.patient_ref == PATIENT
    assert first.outputs == [0.1, -0.0, 1e300, 1, 1 / 3]
    assert first.created_at == rows[0].timestamp == T0
    assert rows[0].object_id == "inf-1" and rows[0].model_version == "chest:1"
    assert rows[0].details[RESULT_DIGEST] == result_digest(first)
    assert rows[2].details[RESULT_DIGEST] == result_digest(third)
    assert RESULT_DIGEST not in rows[1].details


def test_a_failed_batch_stores_nothing(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[Any, Any]:
        store = AuditStore(db, clock())
        await store.append([inference(1)])
        before = await store.head()
        # inf-1 again: its result row collides, after the batch's first entry was linked.
        # A broken constraint is a bug, not an outage: no 503 inviting a retry.
        with pytest.raises(IntegrityError):
            await store.append([event(2), inference(1)])
        return before, await store.head()

    before, after = with_db(scenario)
    assert before == after
    assert before[0] == 1


def test_results_are_rolled_back_with_a_failed_audit_insert(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[Any, Any]:
        store = AuditStore(db, lambda: T0)
        await store.append([inference(1)])
        await store.append([inference(2)])
        # Undo that append by hand but keep its entry, hash and all, at seq 0 (which the
        # head ignores): the same append again then fails at its audit insert, after its
        # result row was inserted.
        await sql(db, "DELETE FROM inference_results WHERE inference_id = 'inf-2'")
        await sql(db, "UPDATE audit_log SET seq = 0 WHERE seq = 2")
        with pytest.raises(IntegrityError):
            await store.append([inference(2)])
        return await store.result("inf-2"), await store.head()

    result, head = with_db(scenario)
    assert result is None
    assert head[0] == 1


def test_concurrent_appends_stay_gapless_and_linear(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[list[list[AuditLog]], Verification]:
        store = AuditStore(db, clock())
        batches = await asyncio.gather(
            *(store.append([event(10 * task + k) for k in range(3)]) for task in range(20))
        )
        return batches, await verified(store)

    batches, verification = with_db(scenario)
    seqs = sorted(row.seq for batch in batches for row in batch)
    assert seqs == list(range(1, 61))
    # Group commit: each batch took a run of consecutive seqs.
    for batch in batches:
        assert [row.seq for row in batch] == list(range(batch[0].seq, batch[0].seq + 3))
    assert verification.valid and verification.entries == 60


def append_in_a_process(url: str, data_dir: str, worker: int, start: Any) -> list[int]:
    """Run in a child process: its own database connection appending batches of two."""
    settings = Settings(data_dir=Path(data_dir), storage={"database_url": url})

    async def main() -> list[int]:
        async with await open_database(settings) as db:
            store = AuditStore(db)
            # Every process connected before any appends, so their appends overlap.
            await asyncio.to_thread(start.wait)
            batches = [await store.append([event(worker), event(worker)]) for _ in range(25)]
            return [row.seq for batch in batches for row in batch]

    return asyncio.run(main())


def test_appends_from_several_processes_take_turns(
    with_db: Any, database_url: str, tmp_path: Path
) -> None:
    assert with_db(head_hash) == GENESIS_HASH  # the schema exists before they start
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(3, mp_context=context) as pool:
        start = manager.Barrier(3, timeout=60)
        args = (database_url, str(tmp_path))
        jobs = [pool.submit(append_in_a_process, *args, w, start) for w in range(3)]
        seqs = [job.result(timeout=120) for job in jobs]

    async def scenario(db: Database) -> Verification:
        return await verify(AuditStore(db))

    assert sorted(itertools.chain(*seqs)) == list(range(1, 151))
    for own in seqs:
        assert all(b == a + 1 for a, b in zip(own[::2], own[1::2], strict=True))
    assert with_db(scenario) == Verification(True, 150, with_db(head_hash), None)


async def head_hash(db: Database) -> str:
    return (await AuditStore(db).head())[1]


def test_clear_patient_ids_are_refused_without_being_echoed() -> None:
    for clear in ("12345678", "pt_123", "PT_0123456789ABCDEF0123", PATIENT + "0"):
        with pytest.raises(ValueError, match="pseudonym") as raised:
            record(1, patient_ref=clear)
        assert clear not in str(raised.value)
    assert record(1, patient_ref=None).patient_ref is None


# --- reading -----------------------------------------------------------------------------


def test_read_pages_by_after_seq_and_limit(with_db: Any) -> None:
    async def scenario(db: Database) -> list[list[int]]:
        store = AuditStore(db, clock())
        await store.append([event(i) for i in range(1, 6)])
        pages = [(0, 2), (2, 2), (4, 2), (5, 2), (0, 1000), (3, 1)]
        return [[row.seq for row in await store.read(a, n)] for a, n in pages]

    assert with_db(scenario) == [[1, 2], [3, 4], [5], [], [1, 2, 3, 4, 5], [4]]


@pytest.mark.parametrize(
    ("after_seq", "limit", "field"),
    [(0, 0, "limit"), (0, 1001, "limit"), (0, -1, "limit"), (-1, 10, "after_seq")],
)
def test_read_refuses_out_of_range_arguments(
    with_db: Any, after_seq: int, limit: int, field: str
) -> None:
    async def scenario(db: Database) -> None:
        with pytest.raises(InvalidInput) as raised:
            await AuditStore(db).read(after_seq, limit)
        assert raised.value.status == 422
        assert raised.value.field == field

    with_db(scenario)
