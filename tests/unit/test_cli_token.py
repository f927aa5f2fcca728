"""``medai token`` mints what the server configured by the same serve config accepts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from medai_cli.common import APP_IMPORT, config_settings
from medai_cli.main import main, parse_duration
from serve_app.auth.credentials import load_credentials
from serve_app.auth.keys import KeyRing
from serve_app.auth.tokens import Principal, TokenVerifier
from tests.jwt_keys import rsa_pair


def write_config(tmp_path: Path, args: dict[str, Any]) -> Path:
    config = tmp_path / "serve_config.yaml"
    app = {"name": "medai", "import_path": APP_IMPORT, "args": args}
    config.write_text(yaml.safe_dump({"applications": [app]}))
    return config


def minted(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["token", *argv]) == 0
    return capsys.readouterr().out.strip()


def test_hs256_token_verifies_with_the_servers_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = {"data_dir": str(tmp_path), "auth": {"issuer": "https://idp", "audience": "medai"}}
    config = write_config(tmp_path, args)
    token = minted(
        capsys, "--sub", "alice", "--role", "clinician", "--ttl", "1h", "--config", str(config)
    )
    settings = config_settings(config)
    verifier = TokenVerifier(
        settings.auth, KeyRing.from_settings(settings.auth, load_credentials(settings))
    )
    assert verifier.verify(token) == Principal("alice", "clinician")


def test_rs256_needs_and_uses_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = rsa_pair()
    auth = {"algorithms": ["RS256"], "public_key_file": str(pair.write_public_pem(tmp_path))}
    config = write_config(tmp_path, {"data_dir": str(tmp_path), "auth": auth})
    assert main(["token", "--sub", "bob", "--role", "admin", "--config", str(config)]) == 2
    assert "--private-key" in capsys.readouterr().err
    private = tmp_path / "private.pem"
    private.write_bytes(
        pair.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    token = minted(
        capsys,
        "--sub",
        "bob",
        "--role",
        "admin",
        "--config",
        str(config),
        "--private-key",
        str(private),
    )
    settings = config_settings(config)
    verifier = TokenVerifier(
        settings.auth, KeyRing.from_settings(settings.auth, load_credentials(settings))
    )
    assert verifier.verify(token) == Principal("bob", "admin")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), ("0.5h", 1800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1w", "-1h", "0", "soon"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_link_carries_the_token_in_the_fragment_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"data_dir": str(tmp_path)})
    base = ["--sub", "alice", "--role", "clinician", "--config", str(config)]
    default = minted(capsys, *base, "--link")
    elsewhere = minted(capsys, *base, "--link", "https://medai.example/")

    assert default.startswith("http://127.0.0.1:8000/ui/#token=")
    server, _, token = elsewhere.partition("#token=")
    assert server == "https://medai.example/ui/" and "?" not in server  # never a query
    settings = config_settings(config)
    verifier = TokenVerifier(
        settings.auth, KeyRing.from_settings(settings.auth, load_credentials(settings))
    )
    assert verifier.verify(token) == Principal("alice", "clinician")
