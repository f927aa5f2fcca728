"""Audit writer throughput (entries/s) on SQLite and PostgreSQL, by group-commit size,
and what verifying the trail costs, in full and going on from the last verification.

    python -m loadtests.bench_audit
    python -m loadtests.bench_audit --postgres postgres://postgres@127.0.0.1:5432/test
    python -m loadtests.bench_audit --verify 100000

Each run opens a fresh database (a temporary SQLite file; a schema of its own in
PostgreSQL, dropped afterwards) and commits inference events, each with its result
row, through the same ``ChainWriter`` the audit-writer deployment runs: one
transaction per batch, chain locked, entries linked and inserted, checkpoints signed
on the default policy. A script, not a test: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr

from serve_app.audit.events import AuditEvent
from serve_app.audit.writer import ChainWriter
from serve_app.auth.credentials import Credentials
from serve_app.records.inference import InferenceRecord
from serve_app.settings import Settings
from serve_app.storage import open_database


def inference(i: int) -> AuditEvent:
    record = InferenceRecord(
        inference_id=str(uuid.uuid4()),
        model_name="chest-xray-demo",
        model_version="1.0.0",
        outputs=[0.73, 0.27],
        confidence=0.27,
        prediction="no_finding",
        threshold=0.85,
        latency_ms=9.8,
        patient_ref=f"pt_{i % 2**80:020x}",
        requested_by="bench",
        role="clinician",
    )
    return AuditEvent.inference(record)


async def entries_per_second(database_url: str | None, batch: int, total: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), storage={"database_url": database_url})
        return await _run(settings, batch, total)


async def _run(settings: Settings, batch: int, total: int) -> float:
    # A throwaway signing key: the benchmark's checkpoints vouch for nothing.
    credentials = Credentials(audit_signing_key=SecretStr(secrets.token_urlsafe(48)))
    async with await open_database(settings) as database:
        writer = ChainWriter.from_settings(settings, credentials, database)
        await writer.write([inference(0)])  # warm: connection, statement caches
        events = [inference(i) for i in range(total)]
        started = time.perf_counter()
        for start in range(0, total, batch):
            await writer.write(events[start : start + batch])
        rate = total / (time.perf_counter() - started)
        verification = await writer.verify()
        assert verification.valid, verification
        return rate


async def verification_seconds(database_url: str | None, total: int) -> tuple[float, float]:
    """Seconds to verify ``total`` entries in full, then again after 1000 more."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), storage={"database_url": database_url})
        credentials = Credentials(audit_signing_key=SecretStr(secrets.token_urlsafe(48)))
        async with await open_database(settings) as database:
            writer = ChainWriter.from_settings(settings, credentials, database)
            for start in range(0, total, 512):
                await writer.write([inference(i) for i in range(start, min(total, start + 512))])
            started = time.perf_counter()
            full = await writer.verify(full=True)
            full_s = time.perf_counter() - started
            for start in range(0, 1000, 500):
                await writer.write([inference(total + start + i) for i in range(500)])
            started = time.perf_counter()
            incremental = await writer.verify()
            incremental_s = time.perf_counter() - started
            await writer.close()
        assert full.valid and incremental.valid and incremental.incremental, incremental
        return full_s, incremental_s


async def on_postgres(url: str, run: Any, *args: Any) -> Any:
    """``run(database_url, *args)`` in a schema of its own, dropped afterwards."""
    schema = f"medai_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        return await run(f"{url}?schema={schema}", *args)
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def verify_main(args: argparse.Namespace) -> None:
    print(f"{'database':10} {'entries':>8} {'full s':>8} {'entries/s':>10} {'+1000 s':>8}")
    databases = [("sqlite", None)] + ([("postgres", args.postgres)] if args.postgres else [])
    for name, url in databases:
        if url is None:
            full_s, incremental_s = await verification_seconds(None, args.verify)
        else:
            full_s, incremental_s = await on_postgres(url, verification_seconds, args.verify)
        rate = args.verify / full_s
        print(f"{name:10} {args.verify:>8} {full_s:8.2f} {rate:10.0f} {incremental_s:8.3f}")


async def main_async(args: argparse.Namespace) -> None:
    if args.verify:
        await verify_main(args)
        return
    print(f"{'database':10} {'batch':>6} {'entries':>8} {'entries/s':>10}")
    for batch in [int(b) for b in args.batches.split(",")]:
        total = max(batch * 4, args.entries if batch > 1 else args.entries // 4)
        rate = await entries_per_second(None, batch, total)
        print(f"{'sqlite':10} {batch:>6} {total:>8} {rate:10.0f}", flush=True)
        if args.postgres:
            rate = await on_postgres(args.postgres, entries_per_second, batch, total)
            print(f"{'postgres':10} {batch:>6} {total:>8} {rate:10.0f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", default="1,8,32,128,512", help="events per transaction")
    parser.add_argument("--entries", type=int, default=4000, help="events per run")
    parser.add_argument(
        "--verify", type=int, default=0, help="instead: time verifying a trail of this many"
    )
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/test",
        help="PostgreSQL URL ('' to skip)",
    )
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
