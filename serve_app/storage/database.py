"""Opening the database: tortoise-orm set up, the schema created or migrated.

NOTE: a process has at most one *process-wide* ``Database``: tortoise's global fallback
context, which every task of the process (a Ray replica's requests included) resolves.
Others are *private*: their own tortoise context, current only inside ``Database.run``,
so an in-process app (tests, the benchmarks' bare peer) keeps a database of its own.
tortoise binds the model classes to the SQL dialect of the context set up last, so the
open databases of a process share one dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionContext
from tortoise.context import TortoiseContext, get_current_context
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction
from tortoise.utils import generate_schema_for_client

from serve_app.auth.credentials import ConfigurationError
from serve_app.settings import Settings
from serve_app.storage.models import SCHEMA_VERSION, SchemaVersion

T = TypeVar("T")

APP = "medai"
MODELS = "serve_app.storage.models"

MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        'ALTER TABLE "inference_results" ADD COLUMN "positive" BOOL',
        'ALTER TABLE "inference_results" ADD COLUMN "endpoint" VARCHAR(64)',
        'ALTER TABLE "inference_results" ADD COLUMN "arm" VARCHAR(160)',
        'ALTER TABLE "inference_results" ADD COLUMN "shadow_of" VARCHAR(64)',
    ),
    3: (
        'ALTER TABLE "inference_results" ADD COLUMN "findings" JSON',
        'ALTER TABLE "inference_results" ADD COLUMN "model_sha256" VARCHAR(64)',
        'ALTER TABLE "inference_results" ADD COLUMN "source" JSON',
    ),
    4: ('ALTER TABLE "audit_log" ADD COLUMN "event_id" VARCHAR(32)',),
}
"""SQL taking a database from schema version ``n - 1`` to ``n``, keyed by ``n``.

New tables need no step (start-up creates missing tables); a step alters existing ones.
One statement an element: they run in the migration's transaction, one at a time.
"""

LATE_INDEXES = (
    'CREATE INDEX IF NOT EXISTS "idx_results_endpoint" ON "inference_results" ("endpoint")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "uid_audit_log_event_id" ON "audit_log" ("event_id")',
)
"""Indexes on columns a migration adds, made after migrating: tortoise makes its own
indexes with the tables, before migrations, when an older table lacks the column."""


def database_url(settings: Settings) -> str:
    """``storage.database_url``, or the SQLite file ``data_dir/medai.sqlite3``."""
    if settings.storage.database_url is not None:
        return settings.storage.database_url
    return f"sqlite://{(settings.data_dir / 'medai.sqlite3').resolve()}"


def _durable(url: str) -> str:
    """A SQLite URL syncs every commit to disk unless it says otherwise.

    NOTE: in WAL mode SQLite's NORMAL sync survives a process crash but may lose the
    last commits on power loss; a 200 promises the result is stored, so FULL.
    """
    if not url.startswith("sqlite:") or "synchronous=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "synchronous=FULL"


def _connection_name(url: str) -> str:
    # NOTE: tortoise caches each model's INSERT statement by connection name, for the
    # process's lifetime; a name per dialect keeps a SQLite statement off PostgreSQL.
    return "sqlite" if url.startswith("sqlite:") else "postgres"


class Database:
    """The open database of this process; ``await close()`` (or ``async with``) ends it."""

    def __init__(
        self,
        context: TortoiseContext,
        name: str,
        lock_timeout_s: float | None = None,
        statement_timeout_s: float | None = None,
        process_wide: bool = True,
    ) -> None:
        self._context = context
        self._name = name
        self.process_wide = process_wide
        self._closed = False
        # PostgreSQL's bounds on a write transaction (``storage.lock_timeout_s``, ...).
        self.lock_timeout_s = lock_timeout_s
        self.statement_timeout_s = statement_timeout_s

    @property
    def connection(self) -> BaseDBAsyncClient:
        return self._context.db(self._name)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgres``."""
        return str(self.connection.capabilities.dialect)

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()`` with this database current: a private one's queries (and the
        tasks they start) resolve its tortoise context only inside this call."""
        if self.process_wide:
            return await work()
        current = contextvars.copy_context()
        # NOTE: entering the tortoise context in a copy of the caller's context makes it
        # current for this call alone; concurrent calls each get their own copy, so a
        # transaction's connection never leaks into another call.
        current.run(self._context.__enter__)
        return await asyncio.create_task(_awaited(work), context=current)

    def transaction(self) -> TransactionContext:
        """``async with db.transaction() as tx:`` one transaction (pass ``using_db=tx``)."""
        return in_transaction(self._name)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _OPEN[self._name] -= 1
        await self._context.close_connections()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _awaited(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


_OPEN: Counter[str] = Counter()
"""Open databases of this process by dialect (see the module's note)."""


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite://PATH[?options]`` URL."""
    return Path(url.removeprefix("sqlite://").split("?", 1)[0])


def _private_sqlite_files(url: str, create: bool) -> None:
    """The SQLite file, its WAL and shared memory readable by this user only.

    NOTE: SQLite gives the -wal and -shm files the database file's mode, so the file is
    made 0600 before SQLite first opens it.
    """
    path = sqlite_path(url)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    elif not path.exists():
        raise ConfigurationError(f"there is no database at {path}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).chmod(0o600)


async def open_database(
    settings: Settings, migrate: bool = True, process_wide: bool = True
) -> Database:
    """Connect, create missing tables and apply pending migrations.

    With ``migrate=False`` (a read-only look, e.g. verification) nothing is created or
    changed, and a missing or older database is a ``ConfigurationError``. A private
    database (``process_wide=False``) is queried inside ``Database.run`` only. Raises
    ``ConfigurationError`` too when a process-wide database is already open in this
    process, another open database speaks another dialect, or the database's schema is
    newer than this code.
    """
    if process_wide and get_current_context() is not None:
        raise ConfigurationError("a database is already open in this process")
    url = database_url(settings)
    name = _connection_name(url)
    if any(count for dialect, count in _OPEN.items() if dialect != name):
        raise ConfigurationError(f"a database of another dialect than {name} is open here")
    if url.startswith("sqlite:"):
        _private_sqlite_files(url, create=migrate)
    context = TortoiseContext()
    config = {
        "connections": {name: _durable(url)},
        "apps": {APP: {"models": [MODELS], "default_connection": name}},
        "use_tz": True,
        "timezone": "UTC",
    }
    with context:  # tortoise resolves the context being set up through its contextvar
        await context.init(config=config, _enable_global_fallback=process_wide)
    storage = settings.storage
    database = Database(
        context, name, storage.lock_timeout_s, storage.statement_timeout_s, process_wide
    )
    _OPEN[name] += 1
    try:
        ready = _create_or_migrate if migrate else _check_schema
        await database.run(lambda: ready(database))
    except BaseException:
        await database.close()
        raise
    return database


async def _create_or_migrate(database: Database) -> None:
    if database.dialect != "postgres":
        # NOTE: each CREATE ... IF NOT EXISTS runs under SQLite's write lock, but reading
        # then recording the schema version must too, or replicas starting together both
        # insert it. A write first takes the lock for the whole migration. Tables are made
        # before: tortoise makes them with executescript, which commits a transaction.
        await generate_schema_for_client(database.connection, safe=True)
        async with database.transaction() as tx:
            await tx.execute_query('UPDATE "schema_version" SET "version" = "version" WHERE 0')
            await _migrate(tx)
            await _late_indexes(tx)
        return
    async with database.transaction() as tx:
        # NOTE: concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's
        # catalog; one lock per schema makes replicas that start together take turns.
        await tx.execute_query(
            "SELECT pg_advisory_xact_lock(hashtext('medai-schema:' || current_schema()))"
        )
        await generate_schema_for_client(tx, safe=True)
        await _migrate(tx)
        await _late_indexes(tx)


async def _check_schema(database: Database) -> None:
    try:
        # NOTE: tortoise types flat values_list rows as tuples; they are the column's values.
        applied: list[Any] = await SchemaVersion.all().values_list("version", flat=True)
    except OperationalError:
        raise ConfigurationError("the database holds no MedAI Flow tables") from None
    current = max((int(v) for v in applied), default=None)
    if current != SCHEMA_VERSION:
        raise ConfigurationError(
            f"the database schema is version {current}, not this code's {SCHEMA_VERSION}:"
            " start the server once to migrate it"
        )


async def _late_indexes(client: BaseDBAsyncClient) -> None:
    for statement in LATE_INDEXES:
        await client.execute_query(statement)


async def _migrate(client: BaseDBAsyncClient) -> None:
    query = SchemaVersion.all().using_db(client)
    applied: list[Any] = await query.values_list("version", flat=True)  # see _check_schema
    current = max((int(v) for v in applied), default=None)
    if current is None:
        await SchemaVersion.create(version=SCHEMA_VERSION, using_db=client)
        return
    if current > SCHEMA_VERSION:
        raise ConfigurationError(
            f"the database schema is version {current}, newer than this code's {SCHEMA_VERSION}"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            # NOTE: not execute_script: on SQLite it would commit the migration's transaction.
            await client.execute_query(statement)
        await SchemaVersion.create(version=version, using_db=client)
