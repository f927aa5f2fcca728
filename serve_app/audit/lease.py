"""The single-writer lease: at most one audit writer appends to a trail at a time.

Two writers at once (a rolling update's overlap, a second cluster on the same database)
would each sign checkpoints of their own view of the head. The lease is an exclusive
``flock`` on a file beside a SQLite database, or a PostgreSQL session advisory lock held
on a connection of its own; both end with the process that holds them, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg

from serve_app.settings import Settings
from serve_app.storage.database import database_url, sqlite_path

POLL_S = 0.1
LOCK_SQL = "SELECT pg_try_advisory_lock(hashtext('medai-audit-writer:' || current_schema()))"


class WriterLease(Protocol):
    async def acquire(self, wait_s: float) -> bool:
        """Take the lease, waiting up to ``wait_s``; ``False`` when another holds it."""
        ...

    def held(self) -> bool: ...

    async def release(self) -> None: ...


class FileLease:
    """``flock`` on ``path``: SQLite's writers all run on the host that holds the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self, wait_s: float) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                await asyncio.sleep(POLL_S)
                continue
            self._fd = fd
            return True

    def held(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


class AdvisoryLease:
    """A PostgreSQL advisory lock per schema, on a connection apart from the pool's."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        schema = parse_qs(parts.query).get("schema", [None])[0]
        # NOTE: tortoise's own query parameters (schema, pool sizes) mean nothing to asyncpg.
        self._dsn = urlunsplit(parts._replace(query=""))
        self._settings = {"search_path": schema} if schema else None
        self._connection: asyncpg.Connection | None = None

    async def acquire(self, wait_s: float) -> bool:
        if self.held():
            return True
        connection = await asyncpg.connect(self._dsn, server_settings=self._settings, timeout=10)
        deadline = time.monotonic() + wait_s
        try:
            while not await connection.fetchval(LOCK_SQL):
                if time.monotonic() >= deadline:
                    await connection.close()
                    return False
                await asyncio.sleep(POLL_S)
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self._connection = connection
        return True

    def held(self) -> bool:
        # NOTE: a closed connection (the server restarted, the network broke) has lost
        # the lock: another writer may have it now.
        return self._connection is not None and not self._connection.is_closed()

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None


def writer_lease(settings: Settings) -> WriterLease:
    url = database_url(settings)
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        return FileLease(path.with_name(path.name + ".writer-lock"))
    return AdvisoryLease(url)
