"""The PostgreSQL server the tests use, and schemas of their own in it.

CI provides it (``MEDAI_TEST_POSTGRES_URL``, by default
``postgres://postgres@127.0.0.1:5432/test``). Each user gets a fresh schema, dropped
afterwards, so runs side by side never see each other's rows. When the server is
unreachable the tests fail: CI must not pass by skipping them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

POSTGRES_URL = os.environ.get("MEDAI_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable ({error}); these tests need it")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A database URL naming a new, empty schema, dropped on exit."""
    schema = f"medai_test_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        asyncio.run(_admin(f'DROP SCHEMA "{schema}" CASCADE'))
