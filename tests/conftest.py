"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_app.cli import build_demo_models
from serve_app.settings import Settings


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
        serve.shutdown()
        ray.shutdown()
