"""Every test here runs against both SQLite (a temporary file) and PostgreSQL.

PostgreSQL is the server CI provides (``MEDAI_TEST_POSTGRES_URL``, by default
``postgres://postgres@127.0.0.1:5432/test``). Each test gets a schema of its own in that
database, dropped afterwards, so runs side by side never see each other's rows. When the
server is unreachable the tests fail: CI must not pass by skipping them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from serve_app.settings import Settings
from serve_app.storage import Database, open_database

POSTGRES_URL = os.environ.get("MEDAI_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")

T = TypeVar("T")
Scenario = Callable[[Callable[[Database], Awaitable[T]]], T]


async def _admin(sql: str) -> None:
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable ({error}); these tests need it")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'medai.sqlite3'}"
        return
    schema = f"medai_test_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        asyncio.run(_admin(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def storage_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        storage={"database_url": database_url},
        audit={"checkpoint_file": tmp_path / "audit" / "checkpoints.jsonl"},
    )


@pytest.fixture
def with_db(storage_settings: Settings) -> Scenario[Any]:
    """``with_db(scenario)``: runs ``await scenario(db)`` on a freshly opened database."""

    def run(scenario: Callable[[Database], Awaitable[T]]) -> T:
        async def main() -> T:
            async with await open_database(storage_settings) as db:
                return await scenario(db)

        return asyncio.run(main())

    return run
