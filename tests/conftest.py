"""Fixtures shared by every test layer.

``MEDAI_TEST_SERVE_MODE=high-throughput`` runs the Ray-served tests in Ray
Serve's HAProxy + throughput-optimized mode (what ``medai serve`` uses), with the
served app's storage on PostgreSQL (a schema of its own, ``tests/postgres.py``);
the default is Ray Serve's default mode on SQLite. ``make test`` runs both, so the
served suite runs on each database without running twice on either.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medai_cli.main import build_demo_models, haproxy_dir, serve_env, stop_haproxy
from serve_app.auth.credentials import Credentials, load_credentials
from serve_app.auth.tokens import mint
from serve_app.settings import Settings

HIGH_THROUGHPUT = os.environ.get("MEDAI_TEST_SERVE_MODE") == "high-throughput"
HAPROXY_DIR = haproxy_dir() if HIGH_THROUGHPUT else None
"""The session's own HAProxy files, as ``medai serve`` has them: Ray's default
``/tmp/haproxy-serve`` is shared with every other server on the host."""
# NOTE: Ray reads these when ray.serve is first imported and when Ray starts, so
# they are set here, before any test module imports Ray.
os.environ.update(serve_env(HIGH_THROUGHPUT, HAPROXY_DIR))
# The secrets every test's server runs with, as a deployment would have them: in the
# environment, which the Ray workers inherit. Fresh each session.
os.environ["MEDAI_JWT_SECRET"] = secrets.token_urlsafe(48)
os.environ["MEDAI_PSEUDONYM_KEY"] = secrets.token_urlsafe(48)
os.environ["MEDAI_AUDIT_SIGNING_KEY"] = secrets.token_urlsafe(48)


def pytest_sessionfinish() -> None:
    # NOTE: Ray leaves its HAProxy running when Serve and Ray stop (README, "Network
    # exposure"); this session's is the one on its own files.
    if HAPROXY_DIR is not None:
        stop_haproxy(HAPROXY_DIR)
        shutil.rmtree(HAPROXY_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store holding the demo models, built once per session with fixed seeds."""
    root = tmp_path_factory.mktemp("model_store")
    build_demo_models(Settings(model_store=root))
    return root


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


TEST_AUTH = {"issuer": "https://idp.medai.test", "audience": "medai-flow", "failure_window_s": 0.5}
"""Test servers check ``iss`` and ``aud``, so the attack matrix covers them, and audit
failed authentications every half second, so tests need not wait long for them."""
TEST_REGISTRY = {"max_shadows_in_flight": 256}
"""Every shadow copy runs, so the tests can count them; shedding is tested apart."""


@pytest.fixture(scope="session")
def server_args(model_store: Path, data_dir: Path) -> dict[str, Any]:
    """The application ``args`` every test server runs with (in-process and Ray-served)."""
    return {
        "model_store": str(model_store),
        "data_dir": str(data_dir),
        "auth": TEST_AUTH,
        "registry": TEST_REGISTRY,
    }


@pytest.fixture(scope="session")
def settings(server_args: dict[str, Any]) -> Settings:
    return Settings(**server_args)


@pytest.fixture(scope="session")
def credentials(settings: Settings) -> Credentials:
    return load_credentials(settings)


TokenFactory = Callable[..., str]


SESSION_TOKEN_TTL_S = 6 * 3600
"""Tokens minted once per session (the ``clinician`` headers) outlive the longest CI run
(``make test`` takes over an hour on a small runner): an hour's token failed late tests."""


@pytest.fixture(scope="session")
def token_for(settings: Settings, credentials: Credentials) -> TokenFactory:
    """``token_for(role, sub=...)``: a token the test servers accept, valid for 6 hours."""
    assert credentials.jwt_secret is not None
    key = credentials.jwt_secret.get_secret_value()

    def token(role: str, sub: str | None = None, ttl_s: float = SESSION_TOKEN_TTL_S) -> str:
        return mint(settings.auth, key, sub or f"test-{role}", role, ttl_s)

    return token


@pytest.fixture(scope="session")
def served_storage() -> Iterator[dict[str, Any]]:
    """The served app's ``storage`` args: PostgreSQL in high-throughput mode, else none
    (SQLite in ``data_dir``, as the in-process app).

    A write waits up to a minute for the chain's lock (5 s by default), so that a test can
    hold a write inside the database while it kills the writer's replica.
    """
    if not HIGH_THROUGHPUT:
        yield {}
        return
    from tests.postgres import fresh_schema

    with fresh_schema() as url:
        yield {"storage": {"database_url": url, "lock_timeout_s": 60}}


@pytest.fixture(scope="session")
def served(server_args: dict[str, Any], served_storage: dict[str, Any]) -> Iterator[str]:
    """``serve_config.yaml`` deployed on one real local Ray instance for the whole session.

    Yields the base URL. Ray is shut down at the end of the session.
    """
    import ray
    from ray import serve

    from deployments.local import deploy, load_config
    from tests.ports import free_port

    config = load_config(port=free_port(), args=server_args | served_storage)
    try:
        yield deploy(config)
    finally:
        # NOTE: in throughput-optimized mode, handles a test made inside its own
        # (now closed) event loop make serve.shutdown() raise; ray.shutdown() ends all.
        with contextlib.suppress(RuntimeError):
            serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def clinician(token_for: TokenFactory) -> dict[str, str]:
    """Headers of an authenticated clinician: what HTTP tests send by default."""
    return {"Authorization": f"Bearer {token_for('clinician')}"}
