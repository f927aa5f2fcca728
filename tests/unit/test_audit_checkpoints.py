"""Signed checkpoints and their append-only file, with real Ed25519 keys."""

from __future__ import annotations

import base64
import dataclasses
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from serve_app.audit.chain import Anchor
from serve_app.audit.checkpoints import (
    DOMAIN,
    DOMAIN_V2,
    Checkpoint,
    CheckpointError,
    CheckpointKind,
    CheckpointLog,
    CheckpointSigner,
    CheckpointVerifier,
    checkpoint_path,
    key_id,
)
from serve_app.auth.credentials import ConfigurationError, Credentials
from serve_app.settings import Settings

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SECRET = "a checkpoint signing secret of at least 32 bytes"


def head(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner.from_secret(SECRET)


def signed(signer: CheckpointSigner, *seqs: int) -> list[Checkpoint]:
    """Checkpoints of ``seqs`` as one file holds them, each after the one before."""
    checkpoints: list[Checkpoint] = []
    for seq in seqs:
        after = checkpoints[-1] if checkpoints else None
        checkpoints.append(signer.sign(seq, head(seq), T0 + timedelta(seconds=seq), after))
    return checkpoints


def format_1(signer_key: Ed25519PrivateKey, seq: int) -> Checkpoint:
    """A checkpoint as the writer signed them before checkpoints were chained."""
    fields = {"head_hash": head(seq), "key_id": key_id(signer_key.public_key()), "seq": seq,
              "time": "2026-11-25T10:00:00.000000Z"}  # fmt: skip
    message = DOMAIN + json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    signature = base64.b64encode(signer_key.sign(message)).decode()
    return Checkpoint(**fields, signature=signature)  # type: ignore[arg-type]


# --- signing and verifying --------------------------------------------------------------


def test_signed_checkpoint_verifies_and_becomes_an_anchor(signer: CheckpointSigner) -> None:
    checkpoint = signer.sign(7, head(7), T0)
    assert (checkpoint.seq, checkpoint.head_hash, checkpoint.key_id) == (7, head(7), signer.key_id)
    assert checkpoint.time == "2026-11-25T10:00:00.000000Z"
    signer.verifier().check(checkpoint)
    assert signer.verifier().anchors([checkpoint]) == [Anchor(7, head(7))]


def test_signature_covers_the_domain_and_every_field(signer: CheckpointSigner) -> None:
    checkpoint = signer.sign(7, head(7), T0)
    fields = {
        "counter": 1, "head_hash": head(7), "key_id": signer.key_id, "kind": "sign",
        "prev": "0" * 64, "seq": 7, "time": checkpoint.time,
    }  # fmt: skip
    message = DOMAIN_V2 + json.dumps(fields, separators=(",", ":")).encode()
    assert checkpoint.signed_message() == message
    signer.public_key.verify(base64.b64decode(checkpoint.signature), message)


def test_format_1_lines_still_verify_and_chain_on() -> None:
    key = Ed25519PrivateKey.generate()
    signer = CheckpointSigner(key)
    old = [format_1(key, 3), format_1(key, 5)]
    new = signer.sign(9, head(9), T0, after=old[-1], counter=3)
    checked = signer.verifier().check_log([*old, new])
    assert [a.seq for a in checked.anchors] == [3, 5, 9]
    assert (checked.newest, checked.lines) == (new, 3)
    with pytest.raises(CheckpointError, match="format-1 checkpoint after format 2"):
        signer.verifier().check_log([*old, new, format_1(key, 10)])


def test_same_secret_gives_same_key_and_others_differ() -> None:
    assert (
        CheckpointSigner.from_secret(SECRET).key_id
        == CheckpointSigner.from_secret(SECRET.encode()).key_id
    )
    assert CheckpointSigner.from_secret(SECRET + "!").key_id != (
        CheckpointSigner.from_secret(SECRET).key_id
    )


def test_naive_time_is_refused(signer: CheckpointSigner) -> None:
    with pytest.raises(ValueError):
        signer.sign(1, head(1), datetime(2026, 11, 25))


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"head_hash": head(8)},
        {"time": "2026-11-25T10:00:01.000000Z"},
        {"counter": 2},
        {"prev": head(1)},
        {"kind": "reanchor"},
    ],
    ids=["seq", "head_hash", "time", "counter", "prev", "kind"],
)
def test_any_changed_field_breaks_the_signature(
    signer: CheckpointSigner, change: dict[str, object]
) -> None:
    forged = dataclasses.replace(signer.sign(7, head(7), T0), **change)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="bad signature"):
        signer.verifier().check(forged)


def test_garbled_signature_is_a_bad_signature(signer: CheckpointSigner) -> None:
    checkpoint = signer.sign(7, head(7), T0)
    for signature in ("not base64!", base64.b64encode(b"\x00" * 64).decode()):
        with pytest.raises(CheckpointError, match="bad signature"):
            signer.verifier().check(dataclasses.replace(checkpoint, signature=signature))


def test_unknown_key_is_refused(signer: CheckpointSigner) -> None:
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match="unknown signing key"):
        signer.verifier().check(other.sign(1, head(1), T0))


def test_a_checkpoint_relabelled_with_a_trusted_key_id_fails(signer: CheckpointSigner) -> None:
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    forged = dataclasses.replace(other.sign(1, head(1), T0), key_id=signer.key_id)
    with pytest.raises(CheckpointError, match="bad signature"):
        signer.verifier().check(forged)


def test_a_trail_signed_under_several_keys_verifies_through_handovers(
    signer: CheckpointSigner,
) -> None:
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    third = CheckpointSigner(Ed25519PrivateKey.generate())
    first = signer.sign(1, head(1), T0)
    handed = other.sign(1, head(1), T0, first, CheckpointKind.HANDOVER, cosigner=signer)
    later = other.sign(2, head(2), T0, handed)
    again = third.sign(4, head(4), T0, later, CheckpointKind.HANDOVER, cosigner=other)
    verifier = CheckpointVerifier([signer.public_key, other.public_key, third.public_key])
    assert [a.seq for a in verifier.anchors([first, handed, later, again])] == [1, 2, 4]


def test_a_key_change_needs_a_handover_cosigned_by_the_key_before(
    signer: CheckpointSigner,
) -> None:
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    stranger = CheckpointSigner(Ed25519PrivateKey.generate())
    verifier = CheckpointVerifier([signer.public_key, other.public_key, stranger.public_key])
    first = signer.sign(1, head(1), T0)
    with pytest.raises(CheckpointError, match="without a handover"):
        verifier.anchors([first, other.sign(2, head(2), T0, first)])
    wrong = other.sign(2, head(2), T0, first, CheckpointKind.HANDOVER, cosigner=stranger)
    with pytest.raises(CheckpointError, match="without a handover"):
        verifier.anchors([first, wrong])
    unsigned = dataclasses.replace(
        other.sign(2, head(2), T0, first, CheckpointKind.HANDOVER, cosigner=signer),
        cosignature=base64.b64encode(b"\x00" * 64).decode(),
    )
    with pytest.raises(CheckpointError, match="bad signature"):
        verifier.anchors([first, unsigned])


def test_a_reanchor_may_change_the_key_and_repeat_a_seq(signer: CheckpointSigner) -> None:
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    first = signer.sign(5, head(5), T0)
    reanchor = other.sign(5, head(5), T0, first, CheckpointKind.REANCHOR)
    checked = CheckpointVerifier([signer.public_key, other.public_key]).check_log([first, reanchor])
    assert (checked.reanchors, [a.seq for a in checked.anchors]) == ([5], [5])


@pytest.mark.parametrize(
    "edit",
    [
        lambda lines: lines[:1] + lines[2:],
        lambda lines: [lines[1], lines[0], *lines[2:]],
        lambda lines: lines[1:],
        lambda lines: [*lines, lines[1]],
    ],
    ids=["middle-line-dropped", "reordered", "first-line-dropped", "line-replayed"],
)
def test_the_file_is_a_chain_lines_cannot_be_dropped_moved_or_replayed(
    signer: CheckpointSigner, edit: Any
) -> None:
    lines = signed(signer, 1, 2, 3, 4)
    with pytest.raises(CheckpointError):
        signer.verifier().check_log(edit(lines))


@pytest.mark.parametrize("seqs", [(3, 2), (3, 3)], ids=["decreasing", "repeated"])
def test_out_of_order_seqs_are_refused(signer: CheckpointSigner, seqs: tuple[int, int]) -> None:
    with pytest.raises(CheckpointError, match="out of order"):
        signer.verifier().anchors(signed(signer, 1, *seqs))


def test_from_credentials_needs_the_secret() -> None:
    with pytest.raises(ConfigurationError):
        CheckpointSigner.from_credentials(Credentials(audit_signing_key=None))
    credentials = Credentials(audit_signing_key=SECRET)  # type: ignore[arg-type]
    assert CheckpointSigner.from_credentials(credentials).key_id == (
        CheckpointSigner.from_secret(SECRET).key_id
    )


def test_checkpoint_path_defaults_under_data_dir(tmp_path: Path) -> None:
    assert checkpoint_path(Settings(data_dir=tmp_path)) == tmp_path / "audit/checkpoints.jsonl"
    chosen = tmp_path / "elsewhere.jsonl"
    assert checkpoint_path(Settings(data_dir=tmp_path, audit={"checkpoint_file": chosen})) == (
        chosen
    )


# --- lines ------------------------------------------------------------------------------


def test_line_round_trip(signer: CheckpointSigner) -> None:
    checkpoint = signer.sign(7, head(7), T0)
    line = checkpoint.to_line()
    assert line.endswith("\n") and line.count("\n") == 1
    assert Checkpoint.from_line(line) == checkpoint


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        '{"seq": 1, "head_hash": "',
        "[1, 2, 3]",
        "5",
        "null",
        '{"seq": 1}',
        '{"seq": 1, "head_hash": "h", "time": "t", "key_id": "k", "signature": "s", "x": 1}',
        '{"seq": "1", "head_hash": "h", "time": "t", "key_id": "k", "signature": "s"}',
        '{"seq": 1, "head_hash": 2, "time": "t", "key_id": "k", "signature": "s"}',
        '{"seq": 1.5, "head_hash": "h", "time": "t", "key_id": "k", "signature": "s"}',
    ],
)
def test_from_line_on_garbage_raises_checkpoint_error(line: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.from_line(line)


# --- the file ---------------------------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> CheckpointLog:
    return CheckpointLog(tmp_path / "audit" / "checkpoints.jsonl")


def test_missing_file_reads_as_no_checkpoints(log: CheckpointLog) -> None:
    assert log.read() == []
    assert log.latest() is None


def test_append_then_read_in_order(log: CheckpointLog, signer: CheckpointSigner) -> None:
    checkpoints = signed(signer, 2, 5, 9)
    for checkpoint in checkpoints:
        log.append(checkpoint)
    assert log.read() == checkpoints
    assert log.latest() == checkpoints[-1]
    assert log.path.read_text() == "".join(c.to_line() for c in checkpoints)


def test_file_is_private(log: CheckpointLog, signer: CheckpointSigner) -> None:
    log.append(signed(signer, 1)[0])
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700


def test_torn_last_line_is_ignored_then_repaired_by_the_next_append(
    log: CheckpointLog, signer: CheckpointSigner
) -> None:
    first, second, third = signed(signer, 1, 2, 3)
    log.append(first)
    # A crash mid-write: half of a line, no newline.
    with log.path.open("a") as file:
        file.write(second.to_line()[:40])
    assert log.read() == [first]
    assert log.latest() == first

    log.append(third)
    assert log.read() == [first, third]
    assert log.path.read_text() == first.to_line() + third.to_line()


def test_torn_only_line_is_dropped_whole(log: CheckpointLog, signer: CheckpointSigner) -> None:
    first, second = signed(signer, 1, 2)
    log.path.parent.mkdir(parents=True)
    log.path.write_text(first.to_line()[:-1])  # whole but for its newline: still torn
    assert log.read() == []
    log.append(second)
    assert log.path.read_text() == second.to_line()


def test_garbage_inside_the_file_is_an_error(log: CheckpointLog, signer: CheckpointSigner) -> None:
    first, second = signed(signer, 1, 2)
    log.path.parent.mkdir(parents=True)
    log.path.write_text(first.to_line() + "garbage\n" + second.to_line())
    with pytest.raises(CheckpointError):
        log.read()


def test_bytes_that_are_not_utf8_are_a_checkpoint_error(
    log: CheckpointLog, signer: CheckpointSigner
) -> None:
    # Verification reports a CheckpointError as an invalid trail, not as a crash.
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(signed(signer, 1)[0].to_line().encode() + b'{"seq": "\xff"}\n')
    with pytest.raises(CheckpointError):
        log.read()


def test_a_torn_line_of_any_bytes_is_ignored(log: CheckpointLog, signer: CheckpointSigner) -> None:
    first = signed(signer, 1)[0]
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(first.to_line().encode() + b'{"seq": 2, "\xe2\x82')
    assert log.read() == [first]
