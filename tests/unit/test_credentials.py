"""Secrets come from the environment or secret files; production refuses development ones."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from serve_app.auth.credentials import ConfigurationError, dev_secrets_dir, load_credentials
from serve_app.settings import Settings

STRONG = "p" * 48


@pytest.fixture
def no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDAI_JWT_SECRET", raising=False)
    monkeypatch.delenv("MEDAI_PSEUDONYM_KEY", raising=False)


@pytest.mark.usefixtures("no_secret_env")
def test_development_generates_private_secrets_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_credentials(settings)
    second = load_credentials(settings)
    assert first.jwt_secret is not None and first.pseudonym_key is not None
    assert first.jwt_secret == second.jwt_secret
    assert first.jwt_secret != first.pseudonym_key
    for path in dev_secrets_dir(settings).iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.usefixtures("no_secret_env")
def test_production_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MEDAI_JWT_SECRET is not set"):
        load_credentials(Settings(environment="production", data_dir=tmp_path))


@pytest.mark.usefixtures("no_secret_env")
def test_production_refuses_the_development_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = load_credentials(Settings(data_dir=tmp_path))
    assert dev.jwt_secret is not None and dev.pseudonym_key is not None
    monkeypatch.setenv("MEDAI_JWT_SECRET", dev.jwt_secret.get_secret_value())
    monkeypatch.setenv("MEDAI_PSEUDONYM_KEY", STRONG)
    with pytest.raises(ConfigurationError, match="development secret"):
        load_credentials(Settings(environment="production", data_dir=tmp_path))


@pytest.mark.usefixtures("no_secret_env")
def test_production_refuses_a_short_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_JWT_SECRET", "changeme")
    monkeypatch.setenv("MEDAI_PSEUDONYM_KEY", STRONG)
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        load_credentials(Settings(environment="production", data_dir=tmp_path))


@pytest.mark.usefixtures("no_secret_env")
def test_production_reads_mounted_secret_files(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "medai_jwt_secret").write_text(STRONG)
    (secrets / "medai_pseudonym_key").write_text("k" * 40)
    settings = Settings(environment="production", data_dir=tmp_path, auth={"secrets_dir": secrets})
    credentials = load_credentials(settings)
    assert credentials.jwt_secret is not None
    assert credentials.jwt_secret.get_secret_value() == STRONG
    assert not dev_secrets_dir(settings).exists()


def test_environment_wins_over_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_JWT_SECRET", STRONG)
    credentials = load_credentials(Settings(data_dir=tmp_path))
    assert credentials.jwt_secret is not None
    assert credentials.jwt_secret.get_secret_value() == STRONG


def test_secrets_never_show_in_reprs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_JWT_SECRET", STRONG)
    assert STRONG not in repr(load_credentials(Settings(data_dir=tmp_path)))


@pytest.mark.usefixtures("no_secret_env")
def test_the_app_builds_where_no_secret_is_and_medai_serve_refuses_to_start_without(
    tmp_path: Path, model_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # NOTE: in a cluster the graph may be built on a node that holds no secret (each
    # replica checks its own); on one host `medai serve` checks them all before Ray.
    from deployments.app import build_app  # builds the graph only; starts no Ray
    from medai_cli.main import main

    args = {"environment": "production", "data_dir": str(tmp_path), "model_store": str(model_store)}
    assert build_app(args) is not None
    with pytest.raises(ConfigurationError, match=r"auth\.issuer"):
        build_app({**args, "auth": {"algorithms": ["RS256"], "jwks_file": str(tmp_path / "k")}})
    config = tmp_path / "serve_config.yaml"
    config.write_text(
        "applications:\n  - name: medai\n    import_path: deployments.app:build_app\n"
        f"    args: {{environment: production, data_dir: {tmp_path}, model_store: {model_store}}}\n"
    )

    assert main(["serve", "--config", str(config)]) == 2
    assert "MEDAI_JWT_SECRET is not set" in capsys.readouterr().err


@pytest.mark.usefixtures("no_secret_env")
def test_each_process_needs_only_its_own_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NOTE: in a cluster each node is given only the secrets of what runs on it: the
    # audit writer's node has the signing key and none of the ingress's.
    monkeypatch.delenv("MEDAI_AUDIT_SIGNING_KEY", raising=False)
    production = Settings(environment="production", data_dir=tmp_path)
    monkeypatch.setenv("MEDAI_AUDIT_SIGNING_KEY", STRONG)

    writer = load_credentials(production, need={"audit_signing_key"})

    assert writer.audit_signing_key is not None and writer.jwt_secret is None
    with pytest.raises(ConfigurationError, match="MEDAI_JWT_SECRET is not set"):
        load_credentials(production)  # the ingress's, by default
    assert load_credentials(production, need=()).audit_signing_key is not None
