"""Builders shared by the audit store and tamper tests: events, a seeded chain, raw SQL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from serve_app.audit.chain import AuditEntry, Verification, chain
from serve_app.audit.checkpoints import CheckpointLog, CheckpointSigner
from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.store import AuditStore
from serve_app.audit.verification import verify
from serve_app.canonical import canonical_json
from serve_app.records.inference import InferenceRecord
from serve_app.storage import Database

T0 = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
SIGNER = CheckpointSigner.from_secret("the audit signing secret of the store tests")
PATIENT = "pt_" + "0123456789abcdef0123"


def event(i: int) -> AuditEvent:
    """An entry that changes no table (a promotion's would be replayed against
    ``model_versions``, which these chains leave empty)."""
    return AuditEvent(
        actor=f"admin-{i}",
        role="admin",
        action=AuditAction.MODEL_INTEGRITY_FAILURE,
        object_type="model",
        object_id=f"chest:{i}",
        model_version=f"chest:{i}",
        details={"from": "validation", "to": "production", "n": i},
    )


def record(i: int, **changes: Any) -> InferenceRecord:
    fields: dict[str, Any] = {
        "inference_id": f"inf-{i}",
        "model_name": "chest",
        "model_version": "1",
        # Numbers a careless store would rewrite: -0.0, 1e300, an int, a long fraction.
        "outputs": (0.1 * i, -0.0, 1e300, 1, 1 / 3),
        "confidence": 0.5 + i / 100,
        "prediction": "pneumonia",
        "threshold": 0.5,
        "latency_ms": 12.25,
        "patient_ref": PATIENT,
        "batch_id": "batch-1",
        "requested_by": "dr-who",
        "role": "clinician",
    }
    return InferenceRecord(**{**fields, **changes})


def inference(i: int) -> AuditEvent:
    return AuditEvent.inference(record(i), route="a")


def clock() -> Any:
    """One tick of a millisecond and a few microseconds per call: distinct, exact instants."""
    ticks = itertools.count()
    return lambda: T0 + timedelta(microseconds=1003 * next(ticks))


SEEDED = (inference, event, inference, event, inference, event)
"""Seqs 1..6 of the seeded chain: inferences at 1, 3 and 5."""


async def seeded(db: Database) -> AuditStore:
    store = AuditStore(db, clock())
    for seq, make in enumerate(SEEDED, start=1):
        await store.append([make(seq)])
    return store


async def sql(db: Database, statement: str, *values: Any) -> None:
    """Run ``statement`` straight on the database, ``?`` placeholders in either dialect."""
    if db.dialect == "postgres":
        parts = statement.split("?")
        statement = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
    await db.connection.execute_query(statement, list(values))


async def sign(db: Database, log: CheckpointLog, *seqs: int) -> None:
    hashes = {row.seq: row.entry_hash for row in await AuditStore(db).read(limit=1000)}
    for seq in seqs:
        log.append(SIGNER.sign(seq, hashes[seq], T0, after=log.latest()))


async def verified(store: AuditStore, log: CheckpointLog | None = None) -> Verification:
    return await verify(store, log, SIGNER.verifier() if log else None, page_size=4)


async def rehash(db: Database, seq: int = 4) -> None:
    """Change ``seq``, then re-hash every row from the genesis hash and rewrite it."""
    rows = await AuditStore(db).read(limit=1000)
    entries = [
        AuditEntry(
            seq=row.seq,
            timestamp=row.timestamp,
            actor=row.actor,
            role=row.role,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            model_version=row.model_version,
            details={"n": 99} if row.seq == seq else row.details,
        )
        for row in rows
    ]
    for new in chain(entries):
        await sql(
            db,
            "UPDATE audit_log SET details = ?, prev_hash = ?, entry_hash = ? WHERE seq = ?",
            canonical_json(new.details),
            new.prev_hash,
            new.entry_hash,
            new.seq,
        )
