"""ChainWriter's checkpoint policy, on a real database and file, with a hand-driven clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from serve_app.audit.chain import Verification
from serve_app.audit.checkpoints import (
    Checkpoint,
    CheckpointLog,
    CheckpointSigner,
    checkpoint_path,
)
from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.store import AuditStore
from serve_app.audit.writer import ChainWriter
from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from serve_app.storage import Database

SECRET = "the audit signing secret of the writer tests"
EVERY_ENTRIES = 5
EVERY_S = 60.0


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def events(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(actor="auditor-1", action=AuditAction.AUDIT_READ, object_type="audit")
        for _ in range(n)
    ]


@pytest.fixture
def log(storage_settings: Settings) -> CheckpointLog:
    return CheckpointLog(checkpoint_path(storage_settings))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def writer_for(log: CheckpointLog, clock: Clock) -> Any:
    """``writer_for(db)``: a fresh writer, as a newly started deployment would hold."""

    def make(db: Database) -> ChainWriter:
        signer = CheckpointSigner.from_secret(SECRET)
        return ChainWriter(AuditStore(db, clock), log, signer, EVERY_ENTRIES, EVERY_S, clock)

    return make


def seqs(log: CheckpointLog) -> list[int]:
    return [checkpoint.seq for checkpoint in log.read()]


async def head_hash(db: Database) -> str:
    return (await AuditStore(db).head())[1]


def test_checkpoint_after_every_entries(with_db: Any, writer_for: Any, log: CheckpointLog) -> None:
    async def scenario(db: Database) -> list[list[int]]:
        writer = writer_for(db)
        seen = []
        for _ in range(4):
            await writer.write(events(1))
        seen.append(seqs(log))
        await writer.write(events(1))
        seen.append(seqs(log))
        await writer.write(events(4))  # 9: four since the last checkpoint
        seen.append(seqs(log))
        await writer.write(events(3))  # 12: one batch past the threshold is signed whole
        seen.append(seqs(log))
        return seen

    assert with_db(scenario) == [[], [5], [5], [5, 12]]


def test_checkpoint_signs_the_committed_head(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> tuple[Checkpoint | None, str]:
        writer = writer_for(db)
        await writer.write(events(2))
        clock.advance(1.5)
        return await writer.checkpoint(), await head_hash(db)

    checkpoint, head = with_db(scenario)
    assert checkpoint is not None and log.read() == [checkpoint]
    assert (checkpoint.seq, checkpoint.head_hash) == (2, head)
    assert checkpoint.time == "2026-11-25T10:00:01.500000Z"
    CheckpointSigner.from_secret(SECRET).verifier().check(checkpoint)


def test_checkpoint_after_every_s(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write(events(1))
        clock.advance(EVERY_S - 0.001)
        early = await writer.checkpoint_if_due()
        clock.advance(0.001)
        due = await writer.checkpoint_if_due()
        # The next period counts from that checkpoint, not from the start.
        await writer.write(events(1))
        clock.advance(EVERY_S / 2)
        again_early = await writer.checkpoint_if_due()
        clock.advance(EVERY_S / 2)
        again_due = await writer.checkpoint_if_due()
        return [early, due and due.seq, again_early, again_due and again_due.seq]

    assert with_db(scenario) == [None, 1, None, 2]
    assert seqs(log) == [1, 2]


def test_an_entry_after_a_quiet_spell_is_signed_at_once(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> None:
        writer = writer_for(db)
        await writer.start()
        clock.advance(10 * EVERY_S)
        await writer.write(events(1))

    with_db(scenario)
    assert seqs(log) == [1]


def test_no_checkpoint_when_nothing_is_new(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        empty = [await writer.checkpoint_if_due(), await writer.checkpoint()]
        await writer.write(events(EVERY_ENTRIES))
        clock.advance(10 * EVERY_S)
        await writer.write([])
        return [*empty, await writer.checkpoint_if_due(), await writer.checkpoint()]

    assert with_db(scenario) == [None, None, None, None]
    assert seqs(log) == [EVERY_ENTRIES]


def test_a_new_writer_picks_up_head_and_latest_checkpoint(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> list[Any]:
        crashed = writer_for(db)
        await crashed.write(events(7))  # signed at 7 ...
        await crashed.write(events(2))  # ... but 8 and 9 never were: no close()
        successor = writer_for(db)
        await successor.start()  # checks 8 and 9 against the checkpoint at 7, signs them
        at_start = seqs(log)
        not_due = await successor.checkpoint_if_due()
        await successor.write(events(4))  # 13: four since 9
        before = seqs(log)
        await successor.write(events(1))  # 14: five since 9
        return [at_start, not_due, before, await successor.verify()]

    at_start, not_due, before, verification = with_db(scenario)
    assert at_start == [7, 9]
    assert not_due is None
    assert before == [7, 9]
    assert seqs(log) == [7, 9, 14]
    assert verification.valid and verification.checkpoint_seq == 14


def test_a_new_writer_signs_an_unsigned_tail_left_before_it(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> Any:
        await writer_for(db).write(events(3))  # crashed before signing
        successor = writer_for(db)
        # The periodic task may be the first to call it, before any write: the writer
        # starts, checks the tail and signs it at once.
        first = await successor.checkpoint_if_due()
        clock.advance(EVERY_S)
        return first, await successor.checkpoint_if_due(), await head_hash(db)

    first, due, head = with_db(scenario)
    assert (first, due) == (None, None)
    (signed,) = log.read()
    assert (signed.seq, signed.head_hash) == (3, head)


def test_close_signs_the_tail(with_db: Any, writer_for: Any, log: CheckpointLog) -> None:
    async def scenario(db: Database) -> list[list[int]]:
        writer = writer_for(db)
        await writer.write(events(EVERY_ENTRIES + 2))
        signed = seqs(log)
        await writer.write(events(1))
        await writer.close()
        closed = seqs(log)
        await writer.close()  # nothing new: nothing more
        return [signed, closed, seqs(log)]

    tail = EVERY_ENTRIES + 3
    assert with_db(scenario) == [[EVERY_ENTRIES + 2], [EVERY_ENTRIES + 2, tail], [7, tail]]


def test_verify_end_to_end(with_db: Any, writer_for: Any, clock: Clock) -> None:
    async def scenario(db: Database) -> tuple[Verification, str, Verification]:
        writer = writer_for(db)
        for size in (3, 4, 1, 6):
            await writer.write(events(size))
            clock.advance(EVERY_S / 4)
        await writer.close()
        valid = await writer.verify(page_size=3)
        head = await head_hash(db)
        await db.connection.execute_query("DELETE FROM audit_log WHERE seq > 10")
        return valid, head, await writer.verify(page_size=3)

    valid, head, cut = with_db(scenario)
    assert valid == Verification(True, 14, head, None, None, 14)
    assert (cut.valid, cut.first_bad_seq, cut.checkpoint_seq) == (False, 11, 7)


def test_from_settings_uses_the_configured_file_and_key(
    with_db: Any, storage_settings: Settings, log: CheckpointLog
) -> None:
    settings = storage_settings.model_copy(
        update={"audit": storage_settings.audit.model_copy(update={"checkpoint_every_entries": 2})}
    )
    credentials = Credentials(audit_signing_key=SECRET)  # type: ignore[arg-type]

    async def scenario(db: Database) -> None:
        await ChainWriter.from_settings(settings, credentials, db).write(events(2))

    with_db(scenario)
    (checkpoint,) = log.read()
    assert checkpoint.seq == 2
    assert checkpoint.key_id == CheckpointSigner.from_secret(SECRET).key_id
