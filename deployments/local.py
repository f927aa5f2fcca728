"""Deploy ``serve_config.yaml`` on a local Ray instance from Python (tests, benchmarks).

This is what ``serve run serve_config.yaml`` does, with overrides for the
HTTP port and the application ``args``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import ray
import yaml
from ray.serve._private import api as serve_private
from ray.serve._private.constants import SERVE_NAMESPACE
from ray.serve.schema import ServeDeploySchema

from serve_app.settings import REPO_ROOT

CONFIG_PATH = REPO_ROOT / "serve_config.yaml"


def load_config(
    path: Path = CONFIG_PATH, port: int | None = None, args: dict[str, Any] | None = None
) -> ServeDeploySchema:
    raw = yaml.safe_load(path.read_text())
    if port is not None:
        raw["http_options"]["port"] = port
    for app in raw["applications"]:
        app["args"] = {**app.get("args", {}), **(args or {})}
    return ServeDeploySchema.model_validate(raw)


def deploy(config: ServeDeploySchema, num_cpus: int = 2, ready_timeout_s: float = 180) -> str:
    """Start Ray if needed, deploy every application, wait for ``/readyz``; return the base URL."""
    if not ray.is_initialized():
        ray.init(
            num_cpus=num_cpus,
            namespace=SERVE_NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
        )
    client = serve_private.serve_start(
        http_options=config.http_options.model_dump(), proxy_location=config.proxy_location
    )
    client.deploy_apps(config, _blocking=False)
    base_url = f"http://127.0.0.1:{config.http_options.port}"
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200:
                return base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{base_url}/readyz did not answer 200 within {ready_timeout_s}s")
