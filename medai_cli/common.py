"""What the ``medai`` commands share: the settings a serve config runs with, and a token
this machine's server accepts (given, or minted)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from serve_app.settings import Settings

APP_IMPORT = "deployments.app:build_app"


def config_settings(config: Path) -> Settings:
    """The settings the app deployed from ``config`` runs with: its ``args`` over ``MEDAI_*``."""
    import yaml

    apps = yaml.safe_load(config.read_text()).get("applications", [])
    args = next((a.get("args") or {} for a in apps if a.get("import_path") == APP_IMPORT), {})
    return Settings(**args)


def local_token(settings: Settings, sub: str, role: str, ttl_s: float | None = None) -> str:
    """A token signed with this machine's HS256 secret (the environment's, or the generated
    development one): what ``medai token``, the benchmark and the load test send."""
    from serve_app.auth.credentials import load_credentials
    from serve_app.auth.tokens import mint

    secret = load_credentials(settings).jwt_secret
    assert secret is not None  # load_credentials refuses to go on without one
    ttl = ttl_s or settings.auth.token_ttl_s
    return mint(settings.auth, secret.get_secret_value(), sub, role, ttl, algorithm="HS256")


def bearer_token(args: argparse.Namespace, role: str) -> str:
    """``--token``, else ``MEDAI_TOKEN``, else a 10-minute development token for ``--as``
    with ``role``, minted with this machine's secret (``--config``)."""
    token = args.token or os.environ.get("MEDAI_TOKEN")
    if token:
        return str(token)
    return local_token(config_settings(args.config), args.as_sub, role, ttl_s=600)
