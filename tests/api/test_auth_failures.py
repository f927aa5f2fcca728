"""A flood of bad tokens (security review, finding 8): failed authentications are counted
and audited in aggregate, with truncated paths, off the request's path; a client address
that keeps failing is rate-limited with 429."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.audit.events import AuditEvent
from serve_app.auth.credentials import Credentials
from serve_app.http.app import create_local_app
from serve_app.settings import Settings
from tests.local_app import on_app, own_database
from tests.problems import assert_problem

WINDOW_S = 1.0
JUNK = ["Bearer not.a.jwt", "Bearer e30.e30.c2ln", "Bearer " + "x" * 40, "Basic dXNlcjpwdw=="]
"""A malformed token, an unsigned one, a non-JWT, another scheme: three rules."""


def app_settings(server_args: dict[str, Any], directory: Path, **overrides: Any) -> Settings:
    auth = server_args["auth"] | {"failure_window_s": WINDOW_S}
    return own_database(Settings(**(server_args | {"auth": auth} | overrides)), directory)


@pytest.fixture
def flooded(server_args: dict[str, Any], credentials: Credentials, tmp_path: Path) -> Iterator[Any]:
    trail = DatabaseTrail(app_settings(server_args, tmp_path), process_wide=False)
    app = create_local_app(trail.settings, credentials, trail)
    with TestClient(app) as client:
        yield client, trail


def entries(api: TestClient, trail: DatabaseTrail) -> list[Any]:
    return on_app(api, lambda: trail.entries(0, 1000))


def failures(api: TestClient, trail: DatabaseTrail) -> list[dict[str, Any]]:
    return [dict(e.details) for e in entries(api, trail) if e.action == "auth.failure"]


def test_a_flood_of_bad_tokens_is_audited_in_aggregate(flooded: Any) -> None:
    api, trail = flooded
    started = time.monotonic()
    for i in range(400):
        path = f"/infer/{i}-" + "p" * 16_000 if i % 2 else "/infer"
        response = api.post(path, headers={"Authorization": JUNK[i % len(JUNK)]})
        assert response.status_code == 401
    windows = (time.monotonic() - started) / WINDOW_S + 2
    deadline = time.monotonic() + 10
    while sum(f["count"] for f in failures(api, trail)) < 400 and time.monotonic() < deadline:
        time.sleep(WINDOW_S)
    counted = failures(api, trail)
    assert sum(f["count"] for f in counted) == 400
    # One entry per rule and client and window: a handful, not 400.
    assert len(counted) <= 3 * windows < 40
    assert {f["rule"] for f in counted} == {"malformed", "algorithm", "missing"}
    assert all(len(path) <= 256 for f in counted for path in f["paths"])
    assert all(len(f["paths"]) <= 8 for f in counted)
    assert all(e.actor == "anonymous" for e in entries(api, trail))


class StuckTrail(DatabaseTrail):
    """A trail whose writes never finish (a stalled writer)."""

    async def record(self, events: Sequence[AuditEvent]) -> None:
        await asyncio.sleep(3600)


@pytest.mark.timeout(60)
def test_the_401_never_waits_for_the_audit_writer(
    server_args: dict[str, Any], credentials: Credentials, tmp_path: Path
) -> None:
    trail = StuckTrail(app_settings(server_args, tmp_path), process_wide=False)
    app = create_local_app(trail.settings, credentials, trail)
    with TestClient(app) as api:
        started = time.monotonic()
        for _ in range(20):
            assert api.get("/audit", headers={"Authorization": JUNK[0]}).status_code == 401
        assert time.monotonic() - started < 10


def test_a_client_that_keeps_failing_gets_429(
    server_args: dict[str, Any], credentials: Credentials, clinician: dict[str, str], tmp_path: Path
) -> None:
    limits = {"enabled": True, "unauthenticated_per_second": 0.01, "unauthenticated_burst": 5}
    app = create_local_app(app_settings(server_args, tmp_path, rate_limit=limits), credentials)
    with TestClient(app) as api:
        statuses = [
            api.get("/audit", headers={"Authorization": JUNK[0]}).status_code for _ in range(5)
        ]
        assert statuses == [401] * 5
        limited = api.get("/audit", headers={"Authorization": JUNK[0]})
        assert_problem(limited, 429, "authorization", "rate-limit")
        assert int(limited.headers["retry-after"]) >= 1
        # The address's valid tokens are still served: only failures are limited.
        assert api.get("/results/no-such-result", headers=clinician).status_code == 404
