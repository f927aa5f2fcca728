"""Tampering done straight in the database, with SQL, and what verification names."""

from __future__ import annotations

from typing import Any

import pytest

from serve_app.audit.chain import Verification
from serve_app.audit.checkpoints import CheckpointLog, CheckpointSigner, checkpoint_path
from serve_app.settings import Settings
from serve_app.storage import Database
from tests.storage.audit_builders import T0, rehash, seeded, sign, sql, verified


@pytest.fixture
def log(storage_settings: Settings) -> CheckpointLog:
    return CheckpointLog(checkpoint_path(storage_settings))


def tampered(
    with_db: Any, tamper: Any, log: CheckpointLog | None = None, signed: tuple[int, ...] = ()
) -> Verification:
    """Seed seqs 1..6, sign ``signed`` into ``log``, run ``tamper(db)``, then verify."""

    async def scenario(db: Database) -> Verification:
        store = await seeded(db)
        if log is not None:
            await sign(db, log, *signed)
        assert (await verified(store, log)).valid
        await tamper(db)
        return await verified(store, log)

    result: Verification = with_db(scenario)
    return result


def test_altered_details_name_that_row(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "UPDATE audit_log SET details = ? WHERE seq = 4", '{"n":5}')

    result = tampered(with_db, tamper)
    assert (result.valid, result.first_bad_seq) == (False, 4)
    assert "altered" in (result.reason or "")


def test_altered_actor_names_that_row(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")

    assert tampered(with_db, tamper).first_bad_seq == 2


def test_deleted_middle_row_is_missing_at_its_seq(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "DELETE FROM audit_log WHERE seq = 3")

    result = tampered(with_db, tamper)
    assert (result.valid, result.first_bad_seq) == (False, 3)
    assert "missing" in (result.reason or "")


def test_swapped_seqs_are_caught_at_the_first_moved_row(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "UPDATE audit_log SET seq = -2 WHERE seq = 2")
        await sql(db, "UPDATE audit_log SET seq = 2 WHERE seq = 5")
        await sql(db, "UPDATE audit_log SET seq = 5 WHERE seq = -2")

    result = tampered(with_db, tamper)
    assert (result.valid, result.first_bad_seq) == (False, 2)


def test_rehashed_chain_is_caught_only_by_a_signed_checkpoint(
    with_db: Any, log: CheckpointLog
) -> None:
    async def scenario(db: Database) -> tuple[str, Verification, Verification]:
        store = await seeded(db)
        await sign(db, log, 2, 5)
        await rehash(db)
        return (await store.head())[1], await verified(store), await verified(store, log)

    head, without_checkpoints, with_checkpoints = with_db(scenario)
    # The chain alone is consistent again: only the signatures can tell.
    assert without_checkpoints == Verification(True, 6, head, None)
    assert not with_checkpoints.valid
    # Rows 1 and 2 re-hash to what checkpoint 2 signed; after it nothing can be trusted.
    assert (with_checkpoints.first_bad_seq, with_checkpoints.checkpoint_seq) == (3, 2)
    assert "signed checkpoint" in (with_checkpoints.reason or "")


def test_rehash_after_the_newest_checkpoint_is_not_seen(with_db: Any, log: CheckpointLog) -> None:
    # The limit of the design: rows signed by no checkpoint yet are only self-consistent.
    assert tampered(with_db, rehash, log, signed=(3,)).valid


def test_cut_off_newest_rows_pass_without_checkpoints(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "DELETE FROM audit_log WHERE seq > 5")  # seq 6 stored no result

    result = tampered(with_db, tamper)
    assert (result.valid, result.entries) == (True, 5)


def test_a_cut_off_inference_entry_leaves_its_result_orphaned(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "DELETE FROM audit_log WHERE seq > 4")  # seq 5 stored inf-5

    result = tampered(with_db, tamper)
    assert (result.valid, result.entries) == (False, 4)
    assert "3 result rows but 2 inference entries" in (result.reason or "")


def test_cut_off_newest_rows_are_caught_by_a_checkpoint(with_db: Any, log: CheckpointLog) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "DELETE FROM audit_log WHERE seq > 4")

    result = tampered(with_db, tamper, log, signed=(3, 6))
    assert (result.valid, result.first_bad_seq, result.checkpoint_seq) == (False, 5, 3)
    assert "cut off" in (result.reason or "")


def test_altered_result_row_is_caught_at_its_audit_entry(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        update = "UPDATE inference_results SET prediction = 'normal' WHERE inference_id = ?"
        await sql(db, update, "inf-3")

    result = tampered(with_db, tamper)
    assert (result.valid, result.first_bad_seq) == (False, 3)
    assert "inf-3 was altered" in (result.reason or "")


def test_altered_result_outputs_are_caught(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        # seq 5's outputs but for the first, 0.5 before.
        update = "UPDATE inference_results SET outputs = ? WHERE inference_id = 'inf-5'"
        await sql(db, update, "[0.6,-0.0,1e+300,1,0.3333333333333333]")

    assert tampered(with_db, tamper).first_bad_seq == 5


def test_deleted_result_row_is_caught_at_its_audit_entry(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "DELETE FROM inference_results WHERE inference_id = 'inf-5'")

    result = tampered(with_db, tamper)
    assert (result.valid, result.first_bad_seq) == (False, 5)
    assert "inf-5 is missing" in (result.reason or "")


def test_the_earliest_of_chain_and_result_damage_is_named(with_db: Any) -> None:
    async def tamper(db: Database) -> None:
        await sql(db, "UPDATE audit_log SET actor = 'x' WHERE seq = 4")
        await sql(db, "UPDATE inference_results SET confidence = 0.01 WHERE inference_id = 'inf-3'")

    assert tampered(with_db, tamper).first_bad_seq == 3


def test_a_forged_checkpoint_fails_verification(with_db: Any, log: CheckpointLog) -> None:
    async def scenario(db: Database) -> Verification:
        store = await seeded(db)
        forger = CheckpointSigner.from_secret("not the audit signing secret, but as long")
        log.append(forger.sign(6, (await store.head())[1], T0))
        return await verified(store, log)

    result = with_db(scenario)
    assert not result.valid
    assert "unknown signing key" in (result.reason or "")


def test_an_unreadable_checkpoint_file_fails_verification(with_db: Any, log: CheckpointLog) -> None:
    async def tamper(db: Database) -> None:
        log.path.write_bytes(log.path.read_bytes() + b"\xff\xfe not a checkpoint\n")

    result = tampered(with_db, tamper, log, signed=(4,))
    assert (result.valid, result.first_bad_seq) == (False, None)
    assert "unreadable checkpoint" in (result.reason or "")
