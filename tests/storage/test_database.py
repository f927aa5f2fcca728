"""Opening the database: schema creation, re-opening, one database a process, versions."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tortoise.exceptions import OperationalError

import serve_app.storage.database as database
from serve_app.auth.credentials import ConfigurationError
from serve_app.settings import Settings
from serve_app.storage import Database, open_database
from serve_app.storage.models import SCHEMA_VERSION, SchemaVersion

TABLES = {"audit_log", "inference_results", "model_versions", "schema_version"}


async def tables(db: Database) -> set[str]:
    if db.dialect == "postgres":
        sql = "SELECT table_name AS name FROM information_schema.tables"
        sql += " WHERE table_schema = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    rows = await db.connection.execute_query_dict(sql)
    return {row["name"] for row in rows}


async def versions(db: Database) -> list[int]:
    return [int(v) for v in await SchemaVersion.all().order_by("version").values_list(
        "version", flat=True
    )]  # fmt: skip


def reopen(settings: Settings, scenario: Any) -> Any:
    """Run ``scenario`` on the database opened again, as a restarted process would."""

    async def main() -> Any:
        async with await open_database(settings) as db:
            return await scenario(db)

    return asyncio.run(main())


def test_dialect_matches_the_url(with_db: Any, database_url: str) -> None:
    async def scenario(db: Database) -> str:
        return db.dialect

    expected = "sqlite" if database_url.startswith("sqlite:") else "postgres"
    assert with_db(scenario) == expected


def test_open_creates_every_table_and_records_the_schema_version(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[set[str], list[int]]:
        return await tables(db), await versions(db)

    found, applied = with_db(scenario)
    assert found >= TABLES
    assert applied == [SCHEMA_VERSION]


def test_reopening_is_idempotent_and_keeps_rows(with_db: Any, storage_settings: Settings) -> None:
    async def write(db: Database) -> None:
        await db.connection.execute_query(
            "INSERT INTO inference_results (inference_id, model_name, model_version,"
            " requested_by, outputs, confidence, prediction, threshold, latency_ms, created_at)"
            " VALUES ('inf-1', 'chest', '1', 'dr', '[0.5]', 0.5, 'normal', 0.5, 1.0,"
            " '2026-11-25 10:00:00+00:00')"
        )

    async def read(db: Database) -> tuple[list[int], int]:
        rows = await db.connection.execute_query_dict("SELECT inference_id FROM inference_results")
        return await versions(db), len(rows)

    with_db(write)
    assert reopen(storage_settings, read) == ([SCHEMA_VERSION], 1)
    assert reopen(storage_settings, read) == ([SCHEMA_VERSION], 1)


def test_a_second_open_in_the_same_process_is_refused(
    with_db: Any, storage_settings: Settings
) -> None:
    async def scenario(db: Database) -> None:
        with pytest.raises(ConfigurationError, match="already open"):
            await open_database(storage_settings)
        # The refused open left the first one working.
        await db.connection.execute_query("SELECT 1")

    with_db(scenario)


def test_closing_lets_the_process_open_again(storage_settings: Settings) -> None:
    async def main() -> str:
        first = await open_database(storage_settings)
        await first.close()
        async with await open_database(storage_settings) as second:
            return second.dialect

    assert asyncio.run(main()) in {"sqlite", "postgres"}


def test_a_schema_newer_than_the_code_is_refused(with_db: Any, storage_settings: Settings) -> None:
    async def from_the_future(db: Database) -> None:
        await SchemaVersion.create(version=SCHEMA_VERSION + 1)

    with_db(from_the_future)

    async def main() -> None:
        await open_database(storage_settings)

    with pytest.raises(ConfigurationError, match=f"version {SCHEMA_VERSION + 1}, newer"):
        asyncio.run(main())

    # The refused open closed what it had opened: the process may open a database again.
    async def count(db: Database) -> int:
        return await SchemaVersion.all().count()

    with pytest.raises(ConfigurationError, match="newer"):
        reopen(storage_settings, count)


def test_default_url_is_a_sqlite_file_under_data_dir(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path)
    assert database.database_url(settings) == f"sqlite://{(tmp_path / 'medai.sqlite3').resolve()}"


def test_default_database_is_created_under_data_dir(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")

    async def main() -> str:
        async with await open_database(settings) as db:
            return db.dialect

    assert asyncio.run(main()) == "sqlite"
    assert (tmp_path / "fresh" / "medai.sqlite3").is_file()


def test_the_sqlite_files_are_readable_by_their_owner_only(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    path = tmp_path / "fresh" / "medai.sqlite3"
    path.parent.mkdir()
    path.touch(mode=0o644)  # left world-readable by an earlier version

    async def main() -> None:
        async with await open_database(settings) as db:
            await SchemaVersion.all().using_db(db.connection).count()  # the WAL exists now

    asyncio.run(main())
    modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.glob("medai.sqlite3*")}
    assert modes and set(modes.values()) == {0o600}, modes


def test_a_read_only_open_changes_nothing(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")

    async def look() -> None:
        async with await open_database(settings, migrate=False):
            pass

    with pytest.raises(ConfigurationError, match="no database"):
        asyncio.run(look())
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize(("query", "expected"), [("", 2), ("?synchronous=NORMAL", 1)])
def test_sqlite_syncs_every_commit_unless_the_url_says_otherwise(
    tmp_path: Any, query: str, expected: int
) -> None:
    url = f"sqlite://{tmp_path / 'medai.sqlite3'}{query}"
    settings = Settings(data_dir=tmp_path, storage={"database_url": url})

    async def main() -> tuple[int, str]:
        async with await open_database(settings) as db:
            (sync,) = await db.connection.execute_query_dict("PRAGMA synchronous")
            (mode,) = await db.connection.execute_query_dict("PRAGMA journal_mode")
            return sync["synchronous"], mode["journal_mode"]

    assert asyncio.run(main()) == (expected, "wal")  # 2 is FULL, 1 NORMAL


def test_pending_migrations_are_applied_once(
    with_db: Any, storage_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_db(versions)  # a database at this code's schema version
    monkeypatch.setattr(database, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    step = ("ALTER TABLE model_versions ADD COLUMN note VARCHAR(16)",)
    monkeypatch.setitem(database.MIGRATIONS, SCHEMA_VERSION + 1, step)

    async def note_column(db: Database) -> tuple[list[int], list[dict[str, Any]]]:
        return await versions(db), await db.connection.execute_query_dict(
            "SELECT note FROM model_versions"
        )

    assert reopen(storage_settings, note_column) == ([SCHEMA_VERSION, SCHEMA_VERSION + 1], [])
    # Applied: opening again runs no step (a second ALTER would fail).
    assert reopen(storage_settings, versions) == [SCHEMA_VERSION, SCHEMA_VERSION + 1]


def test_a_failing_migration_leaves_the_version_unchanged(
    with_db: Any, storage_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_db(versions)
    monkeypatch.setattr(database, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    steps = ("ALTER TABLE model_versions ADD COLUMN note VARCHAR(16)", "NOT SQL AT ALL")
    monkeypatch.setitem(database.MIGRATIONS, SCHEMA_VERSION + 1, steps)
    with pytest.raises(OperationalError):
        reopen(storage_settings, versions)

    monkeypatch.setitem(database.MIGRATIONS, SCHEMA_VERSION + 1, steps[:1])
    # The half-done step was rolled back with the version: it applies cleanly now.
    assert reopen(storage_settings, versions) == [SCHEMA_VERSION, SCHEMA_VERSION + 1]


def open_in_a_process(url: str, data_dir: str, start: Any) -> list[int]:
    """Run in a child process, as a replica starting at the same moment as others."""
    settings = Settings(data_dir=Path(data_dir), storage={"database_url": url})
    start.wait()
    return reopen(settings, versions)  # type: ignore[no-any-return]


def test_replicas_opening_a_new_database_together_all_start(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite:"):
        # NOTE: tortoise switches a new file to WAL as it connects, and SQLite can refuse
        # that to processes racing on a brand-new file; a deployment's file outlives that.
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite://"))) as db:
            db.execute("PRAGMA journal_mode=WAL")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(4, mp_context=context) as pool:
        start = manager.Barrier(4, timeout=60)
        args = (database_url, str(tmp_path), start)
        jobs = [pool.submit(open_in_a_process, *args) for _ in range(4)]
        assert [job.result(timeout=120) for job in jobs] == [[SCHEMA_VERSION]] * 4
