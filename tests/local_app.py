"""In-process apps of their own: each writes its own trail, on a SQLite file of its own.

One writer holds a trail (a lease beside its database), so an in-process app never
shares a database with another app or with the Ray-served one; the data directory (and
the development secrets in it, which the test tokens are signed with) stays shared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_local_app
from serve_app.schemas.audit import StoredResult
from serve_app.settings import Settings
from serve_app.storage.models import InferenceResult

T = TypeVar("T")


def own_database(settings: Settings, directory: Path) -> Settings:
    """``settings`` with the database and the checkpoint log in ``directory``."""
    url = f"sqlite://{directory / 'medai.sqlite3'}"
    storage = settings.storage.model_copy(update={"database_url": url})
    audit = settings.audit.model_copy(update={"checkpoint_file": directory / "checkpoints.jsonl"})
    return settings.model_copy(update={"storage": storage, "audit": audit})


def on_app(client: TestClient, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()`` in the event loop of ``client``'s app, where its trail is open."""
    assert client.portal is not None, "inside `with TestClient(app)` only"
    return client.portal.call(call)


async def results_of(trail: DatabaseTrail) -> list[StoredResult]:
    """Every result row ``trail`` holds, oldest first."""
    found = await trail.database.run(lambda: InferenceResult.all().order_by("created_at"))
    return [StoredResult.model_validate(row) for row in found]


def stored_results(client: TestClient, trail: DatabaseTrail) -> list[StoredResult]:
    """``results_of(trail)``, from a test outside ``client``'s event loop."""
    return on_app(client, lambda: results_of(trail))


@asynccontextmanager
async def trail_in(directory: Path) -> AsyncIterator[DatabaseTrail]:
    """A trail of its own in ``directory``, open inside the block."""
    trail = await DatabaseTrail.open(Settings(data_dir=directory), process_wide=False)
    try:
        yield trail
    finally:
        await trail.close()


def local_app(settings: Settings, credentials: Credentials, directory: Path) -> FastAPI:
    """The in-process app over ``settings``, with its database in ``directory``."""
    return create_local_app(own_database(settings, directory), credentials)
