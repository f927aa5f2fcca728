"""``medai audit verify``, ``reanchor`` and ``public-key`` against a real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medai_cli.main import main
from serve_app.audit.checkpoints import CheckpointSigner, checkpoint_path, public_key_text
from serve_app.audit.writer import ChainWriter
from serve_app.auth.credentials import load_credentials
from serve_app.errors import ServiceUnavailable
from serve_app.settings import Settings
from serve_app.storage import Database
from serve_app.storage.database import sqlite_path
from tests.storage.test_audit_writer import events
from tests.unit.test_cli_token import write_config


@pytest.fixture
def config(storage_settings: Settings, tmp_path: Path) -> Path:
    args = {
        "data_dir": str(storage_settings.data_dir),
        "storage": {"database_url": storage_settings.storage.database_url},
        "audit": {"checkpoint_file": str(checkpoint_path(storage_settings))},
    }
    return write_config(tmp_path, args)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_reads_without_creating_a_database(
    config: Path, storage_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 2
    assert "no database" in err or "no MedAI Flow tables" in err
    url = storage_settings.storage.database_url or ""
    if url.startswith("sqlite:"):
        assert not sqlite_path(url).exists()


def test_reanchor_from_the_shell_after_the_checkpoint_file_was_lost(
    with_db: Any, config: Path, storage_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = load_credentials(storage_settings, need={"audit_signing_key"})

    async def scenario(db: Database) -> None:
        writer = ChainWriter.from_settings(storage_settings, credentials, db)
        for _ in range(4):
            await writer.write(events(400))
        await writer.close()
        checkpoint_path(storage_settings).unlink()
        halted = ChainWriter.from_settings(storage_settings, credentials, db)
        with pytest.raises(ServiceUnavailable, match="halted"):
            await halted.start()
        await halted.close()

    with_db(scenario)
    broken, _, _ = run(capsys, "audit", "verify", "--config", str(config))
    code, out, err = run(
        capsys, "audit", "reanchor", "--reason", "disk lost", "--actor", "ops",
        "--config", str(config),
    )  # fmt: skip
    assert code == 0, err
    done = json.loads(out)
    assert done["checkpoint"]["kind"] == "reanchor" and done["checkpoint"]["seq"] == 1601
    assert done["verification_before"]["valid"] is False
    verified, out, _ = run(capsys, "audit", "verify", "--config", str(config))
    assert (broken, verified) == (1, 0)
    assert json.loads(out)["reanchored_at"] == [1601]


def test_public_key_prints_the_signing_keys_public_half(
    config: Path, storage_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = load_credentials(storage_settings, need={"audit_signing_key"})
    signer = CheckpointSigner.from_credentials(credentials)
    code, out, _ = run(capsys, "audit", "public-key", "--config", str(config))
    assert code == 0
    assert out.split() == [public_key_text(signer.public_key), "key_id", signer.key_id]
