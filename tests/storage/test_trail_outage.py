"""No answer without its record, on a real database: when the audit write fails inside
the database (the chain's table locked until the write times out, or, on PostgreSQL,
the writer's connection terminated while its write waits), /infer answers 503 with no
result, nothing of the request is stored, the trail still verifies, and the next
request is answered and stored again. tests/api/test_trail_down.py shows the same
with a trail that only pretends to be down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_local_app
from serve_app.settings import Settings
from tests.images import infer_body, pixels
from tests.storage.test_group_commit import hold_the_chain

pytestmark = pytest.mark.timeout(120)

Send = Callable[[int], Awaitable[httpx.Response]]


def app_settings(
    server_args: dict[str, Any], database_url: str, tmp_path: Path, **storage: Any
) -> Settings:
    return Settings(
        **server_args
        | {
            "data_dir": tmp_path,
            "storage": {"database_url": database_url, **storage},
            "audit": {"checkpoint_file": tmp_path / "audit" / "checkpoints.jsonl"},
        }
    )


async def served(
    settings: Settings,
    credentials: Credentials,
    headers: dict[str, str],
    body: Callable[[DatabaseTrail, Send], Awaitable[None]],
) -> None:
    """Run ``body(trail, send)`` against the in-process app over this database."""
    trail = await DatabaseTrail.open(settings)
    app = create_local_app(settings, credentials, trail)
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app", headers=headers) as c,
        ):

            async def send(seed: int) -> httpx.Response:
                return await c.post("/infer", json=infer_body(pixels(seed, 64, 64)))

            await body(trail, send)
    finally:
        await trail.close()


def assert_refused_with_nothing_returned(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "outputs" not in response.text and "inference_id" not in response.text


async def assert_trail_holds_only_the_answers(trail: DatabaseTrail, answered: list[str]) -> None:
    entries = await trail.entries(0, 1000)
    stored = [e.object_id for e in entries if e.action == "inference"]
    assert stored == answered
    for inference_id in answered:
        assert await trail.result(inference_id) is not None
    verification = await trail.verify(full=True)
    assert verification.valid, verification


async def refused_while_held(
    trail: DatabaseTrail,
    send: Send,
    database_url: str,
    refuse: Callable[[], Awaitable[httpx.Response]],
) -> None:
    """An answer stored before and one after ``refuse``, which runs while the chain's
    table is held and must be refused with nothing returned or stored."""
    before = await send(1)
    assert before.status_code == 200, before.text
    release = await hold_the_chain(database_url)
    try:
        refused = await refuse()
    finally:
        await release()
    assert_refused_with_nothing_returned(refused)
    after = await send(3)
    assert after.status_code == 200, after.text
    answered = [r.json()["inference_id"] for r in (before, after)]
    await assert_trail_holds_only_the_answers(trail, answered)


def test_a_locked_chain_is_a_503_and_the_trail_verifies_after(
    server_args: dict[str, Any],
    credentials: Credentials,
    clinician: dict[str, str],
    database_url: str,
    tmp_path: Path,
) -> None:
    settings = app_settings(server_args, database_url, tmp_path, lock_timeout_s=0.5)

    async def scenario(trail: DatabaseTrail, send: Send) -> None:
        await refused_while_held(trail, send, database_url, lambda: send(2))

    asyncio.run(served(settings, credentials, clinician, scenario))


def test_a_writer_connection_killed_mid_write_is_a_503_and_the_trail_verifies_after(
    server_args: dict[str, Any],
    credentials: Credentials,
    clinician: dict[str, str],
    database_url: str,
    tmp_path: Path,
) -> None:
    if database_url.startswith("sqlite://"):
        pytest.skip("PostgreSQL only: a SQLite database has no connection to terminate")
    settings = app_settings(server_args, database_url, tmp_path, lock_timeout_s=60)

    async def scenario(trail: DatabaseTrail, send: Send) -> None:
        async def killed() -> httpx.Response:
            # NOTE: the write waits on the lock, so it is terminated inside its transaction.
            write = asyncio.create_task(send(2))
            await terminate_the_waiting_writer(database_url)
            return await write

        await refused_while_held(trail, send, database_url, killed)

    asyncio.run(served(settings, credentials, clinician, scenario))


async def terminate_the_waiting_writer(database_url: str, within_s: float = 30) -> None:
    """Terminate the backend that waits for this test's audit table (no other test's)."""
    url, _, schema = database_url.partition("?schema=")
    connection = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            pids = await connection.fetch(
                "SELECT pid FROM pg_locks WHERE NOT granted AND relation = $1::regclass",
                f'"{schema}"."audit_log"',
            )
            if pids:
                for row in pids:
                    assert await connection.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"no write waited for the audit table within {within_s}s")
    finally:
        await connection.close()
