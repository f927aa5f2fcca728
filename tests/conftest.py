"""Fixtures shared by every test layer.

``MEDAI_TEST_SERVE_MODE=high-throughput`` runs the Ray-served tests in Ray
Serve's HAProxy + throughput-optimized mode (what ``medai serve`` uses);
the default is Ray Serve's default mode. ``make test`` runs both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_app.cli import HIGH_THROUGHPUT_ENV, build_demo_models
from serve_app.settings import Settings

# NOTE: Ray reads these when ray.serve is first imported and when Ray starts, so
# they are set here, before any test module imports Ray.
if os.environ.get("MEDAI_TEST_SERVE_MODE") == "high-throughput":
    os.environ.update(HIGH_THROUGHPUT_ENV)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store holding the demo models, built once per session with fixed seeds."""
    root = tmp_path_factory.mktemp("model_store")
    build_demo_models(Settings(model_store=root))
    return root


@pytest.fixture(scope="session")
def settings(model_store: Path) -> Settings:
    return Settings(model_store=model_store)


@pytest.fixture(scope="session")
def served(model_store: Path) -> Iterator[str]:
    """``serve_config.yaml`` deployed on one real local Ray instance for the whole session.

    Yields the base URL. Ray is shut down at the end of the session.
    """
    import ray
    from ray import serve

    from deployments.local import deploy, load_config
    from tests.ports import free_port

    config = load_config(port=free_port(), args={"model_store": str(model_store)})
    try:
        yield deploy(config)
    finally:
        # NOTE: in throughput-optimized mode, handles a test made inside its own
        # (now closed) event loop make serve.shutdown() raise; ray.shutdown() ends all.
        with contextlib.suppress(RuntimeError):
            serve.shutdown()
        ray.shutdown()
