"""Every test here runs against both SQLite (a temporary file) and PostgreSQL.

PostgreSQL is the server CI provides (``tests/postgres.py``); each test gets a schema of
its own in it, dropped afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from serve_app.settings import Settings
from serve_app.storage import Database, open_database
from tests.postgres import fresh_schema

T = TypeVar("T")
Scenario = Callable[[Callable[[Database], Awaitable[T]]], T]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'medai.sqlite3'}"
        return
    with fresh_schema() as url:
        yield url


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
