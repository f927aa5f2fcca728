"""Secrets, loaded where they are used (inside each replica), never passed as settings.

Each comes from its ``MEDAI_*`` environment variable or, failing that, a file of the
same name in lower case in ``auth.secrets_dir`` (Kubernetes and Docker secrets). In
development a missing secret is generated once into ``data_dir/dev-secrets/``;
production refuses to start without a real one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from serve_app.settings import Settings

MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key is at least as long as the hash (256 bits)."""


class ConfigurationError(RuntimeError):
    """The server must not start with this configuration."""


class Credentials(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDAI_", extra="ignore")

    jwt_secret: SecretStr | None = None
    """HS256 signing and verification key."""
    pseudonym_key: SecretStr | None = None
    """Key of the keyed hash that pseudonymizes patient ids in logs."""
    audit_signing_key: SecretStr | None = None
    """Seed of the Ed25519 key that signs audit checkpoints; the database never holds it."""
    audit_previous_signing_key: SecretStr | None = None
    """The signing key before a rotation, set once so the writer co-signs the handover."""


OPTIONAL = frozenset({"audit_previous_signing_key"})
"""Secrets only an operator sets, for one step: never generated in development."""


def dev_secrets_dir(settings: Settings) -> Path:
    return settings.data_dir / "dev-secrets"


def _generate_dev_secrets(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in Credentials.model_fields.keys() - OPTIONAL:
        path = directory / f"medai_{name}"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))


def _dev_values(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.read_text().strip() for p in directory.iterdir() if p.is_file()}


def check_identity_provider(settings: Settings) -> None:
    """Production with an outside identity provider (RS256/ES256) names its issuer and
    audience: without them, any application's token signed by that provider is accepted,
    with whatever ``role`` it carries."""
    auth = settings.auth
    if settings.production and "HS256" not in auth.algorithms:
        missing = [name for name in ("issuer", "audience") if getattr(auth, name) is None]
        if missing:
            names = " and ".join(f"auth.{name}" for name in missing)
            raise ConfigurationError(f"production with RS256/ES256 needs {names}")


def ingress_secrets(settings: Settings) -> set[str]:
    """What the ingress needs: the pseudonym key, and the JWT secret under HS256."""
    return {"pseudonym_key", *(["jwt_secret"] if "HS256" in settings.auth.algorithms else [])}


def load_credentials(settings: Settings, need: Iterable[str] | None = None) -> Credentials:
    """The secrets this process needs (``need``; the ingress's by default), refusing what
    production must not run with.

    Each process asks only for its own, so a node is given only the secrets of what runs
    on it: the audit writer asks for ``{"audit_signing_key"}`` alone, and the preprocessing
    and model replicas, which parse untrusted files, ask for none.
    """
    check_identity_provider(settings)
    dirs = [settings.auth.secrets_dir] if settings.auth.secrets_dir else []
    if not settings.production:
        _generate_dev_secrets(dev_secrets_dir(settings))
        dirs.append(dev_secrets_dir(settings))
    credentials = Credentials(_secrets_dir=[d for d in dirs if d.is_dir()] or None)
    needed = ingress_secrets(settings) if need is None else set(need)
    dev = _dev_values(dev_secrets_dir(settings)) if settings.production else set()
    for name in sorted(needed):
        value = getattr(credentials, name)
        env = f"MEDAI_{name.upper()}"
        if value is None:
            raise ConfigurationError(f"{env} is not set (nor medai_{name} in auth.secrets_dir)")
        raw = value.get_secret_value()
        if len(raw.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"{env} must be at least {MIN_SECRET_BYTES} bytes")
        if raw in dev:
            raise ConfigurationError(f"{env} is a development secret; production needs its own")
    return credentials
