"""The audit anchor under attack: checkpoint files deleted, cut or rolled back, a chain
rewritten under a running writer, two writers at once, a rotated key, and tables edited
behind the trail's back. On SQLite and PostgreSQL, with real files, keys and leases."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from serve_app.audit.checkpoints import (
    CheckpointCopies,
    CheckpointKind,
    CheckpointLog,
    CheckpointSigner,
    checkpoint_path,
)
from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.lease import writer_lease
from serve_app.audit.store import AuditStore
from serve_app.audit.tail import TailLimits
from serve_app.audit.verification import verify
from serve_app.audit.writer import ChainWriter, TrailMismatch, WriterState
from serve_app.canonical import canonical_json
from serve_app.errors import ServiceUnavailable
from serve_app.records.model import ModelVersionRecord, StatusChange
from serve_app.records.route import RouteChange
from serve_app.settings import Settings
from serve_app.storage import Database
from tests.storage.audit_builders import (
    PATIENT,
    inference,
    rehash,
    sql,
)
from tests.storage.test_audit_writer import Clock, events

SECRET = "the audit signing secret of the anchor tests"
NEW_SECRET = "the audit signing secret after the rotation"
EVERY_ENTRIES = 5
EVERY_S = 60.0
LIMITS = TailLimits(max_entries=EVERY_ENTRIES + 2, max_age_s=2 * EVERY_S + 5)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(storage_settings: Settings) -> CheckpointLog:
    return CheckpointLog(checkpoint_path(storage_settings))


@pytest.fixture
def writer_for(log: CheckpointLog, clock: Clock) -> Any:
    """``writer_for(db, secret=..., previous=..., trusted=..., lease=...)``: a writer as a
    newly started deployment would hold, with the test's limits and clock."""

    def make(
        db: Database,
        secret: str = SECRET,
        previous: str | None = None,
        trusted: tuple[str, ...] = (),
        **options: Any,
    ) -> ChainWriter:
        return ChainWriter(
            AuditStore(db, clock),
            options.pop("copies", None) or CheckpointCopies(log),
            CheckpointSigner.from_secret(secret),
            EVERY_ENTRIES,
            EVERY_S,
            clock,
            limits=LIMITS,
            previous=CheckpointSigner.from_secret(previous) if previous else None,
            trusted=[CheckpointSigner.from_secret(t).public_key for t in trusted],
            **options,
        )

    return make


async def refused(writer: ChainWriter) -> str:
    """The detail of the 503 the writer answers a write with."""
    with pytest.raises(ServiceUnavailable) as refusal:
        await writer.write(events(1))
    return refusal.value.detail


async def written(db: Database, writer_for: Any, entries: int, **options: Any) -> None:
    """``entries`` written and signed by a writer that then stopped."""
    writer = writer_for(db, **options)
    await writer.write(events(entries))
    await writer.close()


async def halted_after_a_lost_file(
    db: Database, writer_for: Any, log: CheckpointLog
) -> ChainWriter:
    """Twelve entries signed, the checkpoint file lost (a disk, say), a new writer: halted."""
    await written(db, writer_for, 12)
    log.path.unlink()
    successor = writer_for(db)
    with pytest.raises(ServiceUnavailable):
        await successor.start()
    return successor


# --- finding 4: the checkpoint file is not the only anchor any more ----------------------


def test_a_deleted_checkpoint_file_fails_verification(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write(events(12))
        await writer.close()
        intact = await writer.verify()
        log.path.unlink()
        deleted = await writer.verify()
        return [intact, deleted]

    intact, deleted = with_db(scenario)
    assert intact.valid and intact.checkpoint_seq == 12
    assert (deleted.valid, deleted.unsigned_entries) == (False, 12)
    assert "checkpoints are missing" in (deleted.reason or "")


def test_a_short_unsigned_tail_becomes_overdue(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write(events(2))
        fresh = await writer.verify()
        clock.advance(LIMITS.max_age_s + 1)
        return [fresh, await writer.verify()]

    fresh, late = with_db(scenario)
    assert fresh.valid and fresh.unsigned_entries == 2
    assert not late.valid and "checkpoint overdue" in (late.reason or "")


def test_a_restarted_writer_refuses_to_sign_over_a_missing_file(
    with_db: Any, writer_for: Any, log: CheckpointLog
) -> None:
    async def scenario(db: Database) -> list[Any]:
        successor = await halted_after_a_lost_file(db, writer_for, log)
        detail = await refused(successor)
        return [successor.state, detail, await AuditStore(db).head()]

    state, detail, head = with_db(scenario)
    assert state is WriterState.HALTED
    assert "halted" in detail and "checkpoint file" in detail and "reanchor" in detail
    assert head[0] == 12  # nothing was written
    assert not log.path.exists()  # nothing was signed


@pytest.mark.parametrize("how", ["newest-lines-dropped", "older-copy-restored"])
def test_a_cut_or_rolled_back_file_halts_the_restarted_writer(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock, how: str, tmp_path: Path
) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write(events(5))  # signed at 5
        shutil.copy(log.path, tmp_path / "old-copy")
        for _ in range(4):
            clock.advance(EVERY_S)
            await writer.write(events(2))  # signed when due, every period
        await writer.close()
        if how == "older-copy-restored":
            shutil.copy(tmp_path / "old-copy", log.path)
        else:
            lines = log.path.read_bytes().splitlines(keepends=True)
            log.path.write_bytes(b"".join(lines[:1]))
        successor = writer_for(db)
        with pytest.raises(ServiceUnavailable):
            await successor.start()
        return [successor.state, successor.reason, await successor.verify()]

    state, reason, verification = with_db(scenario)
    assert state is WriterState.HALTED and "checkpoints are missing" in reason
    assert not verification.valid


def test_the_running_writer_halts_when_its_file_is_cut_underneath_it(
    with_db: Any, writer_for: Any, log: CheckpointLog, clock: Clock
) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write(events(5))
        await writer.write(events(5))  # signed at 5 and 10
        log.path.write_bytes(log.path.read_bytes().splitlines(keepends=True)[0])
        # Committed (and answered as committed), but not signed on top of the cut file:
        committed = await writer.write(events(5))
        return [len(committed), writer.state, await refused(writer), [c.seq for c in log.read()]]

    committed, state, detail, signed = with_db(scenario)
    assert committed == 5
    assert state is WriterState.HALTED and "changed underneath the writer" in detail
    assert signed == [5]


def test_the_running_writer_refuses_a_tail_rewritten_underneath_it(
    with_db: Any, writer_for: Any, log: CheckpointLog
) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write(events(7))  # signed at 7 (five or more since the start)
        await writer.write(events(2))  # 8 and 9 unsigned
        await rehash(db, seq=8)  # someone with database access rewrites the tail
        detail = await refused(writer)
        head = await AuditStore(db).head()
        successor = writer_for(db)
        with pytest.raises(ServiceUnavailable):
            await successor.start()
        return [detail, head[0], [c.seq for c in log.read()], await writer.verify(), successor]

    detail, head_seq, signed, verification, successor = with_db(scenario)
    assert "written underneath" in detail
    assert head_seq == 9  # the refused write stored nothing
    # The writer signed the head it knew it had committed: the rewrite is named ...
    assert signed == [7, 9]
    assert (verification.valid, verification.first_bad_seq) == (False, 8)
    # ... and no later writer signs over it.
    assert successor.state is WriterState.HALTED and "rewritten" in (successor.reason or "")


def test_reanchoring_is_audited_and_signing_resumes(
    with_db: Any, writer_for: Any, log: CheckpointLog
) -> None:
    async def scenario(db: Database) -> list[Any]:
        halted = await halted_after_a_lost_file(db, writer_for, log)
        checkpoint, before = await halted.reanchor("operator:ops", "disk failure, ticket 42")
        await halted.write(events(2))
        await halted.close()
        entry = (await AuditStore(db).read(after_seq=12, limit=1))[0]
        restarted = writer_for(db)
        await restarted.start()
        return [checkpoint, before, entry, halted.state, await restarted.verify(), restarted]

    checkpoint, before, entry, state, after, restarted = with_db(scenario)
    assert checkpoint.kind == CheckpointKind.REANCHOR and checkpoint.seq == 13
    assert not before.valid
    assert (entry.action, entry.actor, entry.role) == ("audit.reanchor", "operator:ops", "operator")
    assert entry.details["reason"] == "disk failure, ticket 42"
    assert entry.details["verification"]["valid"] is False
    assert entry.details["newest_checkpoint"] is None
    assert state is WriterState.ACTIVE and restarted.state is WriterState.ACTIVE
    assert after.valid and after.reanchored_at == (13,) and after.checkpoint_seq == 15


def test_a_reanchored_rewrite_stays_visible(
    with_db: Any, writer_for: Any, log: CheckpointLog
) -> None:
    async def scenario(db: Database) -> Any:
        writer = writer_for(db)
        await writer.write(events(7))
        await rehash(db, seq=3)  # before the checkpoint at 7
        successor = writer_for(db)
        with pytest.raises(ServiceUnavailable):
            await successor.start()
        await successor.reanchor("operator:ops", "investigated: incident 7")
        await successor.write(events(1))  # service resumes ...
        return await successor.verify()

    verification = with_db(scenario)
    # ... but the altered records are never blessed: the checkpoint at 7 still names them.
    assert not verification.valid and verification.reanchored_at == (8,)
    assert "differs from its signed checkpoint" in (verification.reason or "")


# --- finding 5: two writers, a rotated key ------------------------------------------------


def test_two_writers_take_turns_through_the_lease(
    with_db: Any, writer_for: Any, log: CheckpointLog, storage_settings: Settings
) -> None:
    async def scenario(db: Database) -> list[Any]:
        old = writer_for(db, lease=writer_lease(storage_settings))
        new = writer_for(db, lease=writer_lease(storage_settings), lease_wait_s=0.2)
        await old.write(events(3))
        detail = await refused(new)  # a rolling update's overlap: the new one waits
        await old.write(events(3))
        await old.close()  # the old writer stops: the lease is free
        await new.write(events(3))
        await new.close()
        return [detail, new.state, await new.verify()]

    detail, state, verification = with_db(scenario)
    assert "lease" in detail
    assert state is WriterState.ACTIVE
    assert verification.valid and verification.entries == 9
    assert [c.seq for c in log.read()] == sorted({c.seq for c in log.read()})


def test_a_rotated_key_hands_over_and_the_whole_trail_verifies(
    with_db: Any, writer_for: Any, log: CheckpointLog
) -> None:
    async def scenario(db: Database) -> list[Any]:
        await written(db, writer_for, 6)
        # The operator sets the new key, and the old one once for the handover.
        await written(db, writer_for, 6, secret=NEW_SECRET, previous=SECRET)
        # Later restarts hold only the new key, and the old one's public half.
        later = writer_for(db, secret=NEW_SECRET, trusted=(SECRET,))
        await later.start()
        return [log.read(), await later.verify(), later.state]

    checkpoints, verification, state = with_db(scenario)
    handover = [c for c in checkpoints if c.kind == CheckpointKind.HANDOVER]
    assert len(handover) == 1 and handover[0].seq == 6
    assert handover[0].cosigner == CheckpointSigner.from_secret(SECRET).key_id
    assert handover[0].key_id == CheckpointSigner.from_secret(NEW_SECRET).key_id
    assert verification.valid and verification.checkpoint_seq == 12
    assert state is WriterState.ACTIVE


def test_a_new_key_without_a_handover_halts_but_the_trail_still_verifies(
    with_db: Any, writer_for: Any, log: CheckpointLog
) -> None:
    async def scenario(db: Database) -> list[Any]:
        await written(db, writer_for, 6)
        restarted = writer_for(db, secret=NEW_SECRET, trusted=(SECRET,))
        with pytest.raises(ServiceUnavailable):
            await restarted.start()
        return [restarted.reason, await restarted.verify()]

    reason, verification = with_db(scenario)
    assert "MEDAI_AUDIT_PREVIOUS_SIGNING_KEY" in reason
    assert verification.valid and verification.entries == 6


def test_copies_catch_a_primary_rolled_back(
    with_db: Any, writer_for: Any, log: CheckpointLog, tmp_path: Path
) -> None:
    copy = CheckpointLog(tmp_path / "elsewhere" / "checkpoints.jsonl")

    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db, copies=CheckpointCopies(log, [copy]))
        await writer.write(events(5))
        shutil.copy(log.path, tmp_path / "old")
        await writer.write(events(5))
        await writer.close()
        shutil.copy(tmp_path / "old", log.path)
        return [copy.read(), await writer.verify()]

    copied, verification = with_db(scenario)
    assert [c.seq for c in copied] == [5, 10]
    assert not verification.valid and "disagrees with its copy" in (verification.reason or "")


# --- finding 7: what serves is what the trail says ---------------------------------------


def registered(version: str, status: str) -> AuditEvent:
    """A registration as the registry records it (``Registry._record``)."""
    change = ModelVersionRecord(
        model_name="chest", version=version, file_path=f"/store/{version}",
        file_hash=f"{int(version):064x}", file_size_bytes=10, input_shape=[None, 1, 64, 64],
        output_shape=[None, 2], status=status,
    )  # fmt: skip
    return AuditEvent(
        actor="eve", role="ml_engineer", action=AuditAction.MODEL_REGISTER,
        object_type="model", object_id=f"chest:{version}", model_version=f"chest:{version}",
        details={"sha256": change.file_hash, "size_bytes": 10, "status": status}, model=change,
    )  # fmt: skip


def promoted(version: str, status: str) -> AuditEvent:
    return AuditEvent(
        actor="eve", role="ml_engineer", action=AuditAction.MODEL_PROMOTE, object_type="model",
        object_id=f"chest:{version}", model_version=f"chest:{version}",
        details={"to": status, "status": status},
        model=StatusChange("chest", version, status),
    )  # fmt: skip


ROUTE = {"arms": [{"model": "chest:1", "weight": 1.0}], "shadow": [], "sticky_key": None}


def routed(config: dict[str, Any] | None) -> AuditEvent:
    details = config if config is not None else {"deleted": True}
    return AuditEvent(
        actor="eve", role="ml_engineer", action=AuditAction.ROUTE_CHANGE, object_type="route",
        object_id="chest-ab", details=details, route=RouteChange("chest-ab", config),
    )  # fmt: skip


TABLE_EDITS = {
    "development-set-to-production": (
        "UPDATE model_versions SET status = 'production' WHERE version = '2'",
        "chest:2 is production in model_versions but validation in the trail",
    ),
    "model-inserted": (
        "INSERT INTO model_versions (model_name, version, status, file_path, file_hash,"
        " file_size_bytes, input_shape, output_shape, created_at) VALUES ('chest', '9',"
        " 'production', '/x', 'ab', 1, '[]', '[]', '2026-11-25T10:00:00+00:00')",
        "chest:9 is in model_versions but no audit entry registered it",
    ),
    "file-hash-changed": (
        "UPDATE model_versions SET file_hash = 'ab' WHERE version = '1'",
        "chest:1's file hash in model_versions differs",
    ),
    "route-inserted": (
        "INSERT INTO routes (endpoint, config, updated_by, updated_at) VALUES ('sneaky',"
        ' \'{"arms":[{"model":"chest:2","weight":1.0}],"shadow":[],"sticky_key":null}\','
        " 'mallory', '2026-11-25T10:00:00+00:00')",
        "route sneaky is in routes but no audit entry set it",
    ),
    "route-deleted": (
        "DELETE FROM routes",
        "route chest-ab was set in the trail but is not in routes",
    ),
    "result-without-entry": (
        "INSERT INTO inference_results (inference_id, model_name, model_version, requested_by,"
        " patient_ref, outputs, confidence, prediction, threshold, latency_ms, created_at)"
        f" VALUES ('forged', 'chest', '1', 'dr-who', '{PATIENT}', '[0.5]', 0.5, 'x', 0.5, 1,"
        " '2026-11-25T10:00:00+00:00')",
        "2 result rows but 1 inference entries",
    ),
}


@pytest.mark.parametrize("edit", sorted(TABLE_EDITS))
def test_a_table_edited_behind_the_trail_fails_verification_and_never_serves(
    with_db: Any, writer_for: Any, edit: str
) -> None:
    statement, named = TABLE_EDITS[edit]

    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write([registered("1", "production"), registered("2", "development")])
        await writer.write([promoted("2", "validation"), routed(ROUTE)])
        await writer.write([routed(None), routed(ROUTE), inference(1)])
        before = await writer.verify()
        await writer.check_tables()
        await sql(db, statement)
        if edit == "result-without-entry":  # results do not decide what serves
            await writer.check_tables()
            return [before, await writer.verify(), named]
        with pytest.raises(TrailMismatch) as refusal:
            await writer.check_tables()
        return [before, await writer.verify(), refusal.value.detail]

    before, after, refusal = with_db(scenario)
    assert before.valid, before.reason
    assert not after.valid and named in (after.reason or "")
    assert named in refusal


def test_an_inference_entry_retargeted_at_another_result_is_caught(
    with_db: Any, writer_for: Any
) -> None:
    async def scenario(db: Database) -> Any:
        writer = writer_for(db)
        await writer.write([inference(1), inference(2)])
        rows = await AuditStore(db).read()
        # Entry 2 made to name inf-1 (with inf-1's digest), and the chain re-hashed:
        # every entry still has an intact row, and the counts still agree.
        details = canonical_json(rows[0].details)
        await sql(
            db, "UPDATE audit_log SET object_id = 'inf-1', details = ? WHERE seq = 2", details
        )
        await rehash(db, seq=0)
        return await verify(AuditStore(db))

    verification = with_db(scenario)
    assert not verification.valid
    assert "inference inf-1 has more than one audit entry" in (verification.reason or "")


def test_verification_reports_no_problem_for_a_real_registry_history(
    with_db: Any, writer_for: Any
) -> None:
    async def scenario(db: Database) -> Any:
        writer = writer_for(db)
        await writer.write([registered("1", "production"), registered("2", "development")])
        await writer.write([promoted("2", "validation")])
        await writer.write([promoted("2", "production"), promoted("1", "retired")])
        await writer.write([routed(ROUTE), routed(None)])
        await writer.check_tables()
        return await writer.verify()

    verification = with_db(scenario)
    assert verification.valid, verification.reason


# --- incremental verification -----------------------------------------------------------


def test_verification_goes_on_from_the_last_one(with_db: Any, writer_for: Any) -> None:
    async def scenario(db: Database) -> list[Any]:
        writer = writer_for(db)
        await writer.write(events(12))
        first = await writer.verify(page_size=4)
        await writer.write(events(7))
        second = await writer.verify(page_size=4)
        # An entry altered in place, the hashes after it left alone: only a full
        # verification reads it again.
        await sql(db, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
        return [first, second, await writer.verify(), await writer.verify(full=True)]

    first, second, unread, full = with_db(scenario)
    assert first.valid and not first.incremental
    assert (first.entries, first.checkpoint_seq) == (12, 12)
    assert second.valid and second.incremental
    assert (second.entries, second.checkpoint_seq) == (19, 19)
    assert unread.valid and unread.incremental
    assert (full.valid, full.first_bad_seq, full.incremental) == (False, 3, False)


@pytest.mark.parametrize("tamper", ["chain-rehashed", "file-cut", "row-appended-as-result"])
def test_incremental_verification_falls_back_when_what_it_proved_changed(
    with_db: Any, writer_for: Any, log: CheckpointLog, tamper: str
) -> None:
    async def scenario(db: Database) -> Any:
        writer = writer_for(db)
        for size in (5, 5, 2):
            await writer.write(events(size))  # signed at 5 and 10
        assert (await writer.verify()).valid
        await writer.write(events(2))
        if tamper == "chain-rehashed":
            await rehash(db, seq=2)
        elif tamper == "file-cut":
            log.path.write_bytes(log.path.read_bytes().splitlines(keepends=True)[0])
        else:
            await writer.write([inference(1)])
            await sql(db, "DELETE FROM audit_log WHERE seq = 15")
        return await writer.verify()

    verification = with_db(scenario)
    assert not verification.valid
