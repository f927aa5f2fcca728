"""Signed checkpoints of the audit chain, kept apart from the database.

Anyone who can write to the database can re-hash the whole chain, or cut off its newest
rows, and leave a chain that is consistent. A checkpoint is an Ed25519 signature over
``(seq, head_hash, time)`` under a key the database never holds (derived from the
``MEDAI_AUDIT_SIGNING_KEY`` secret); checkpoints are appended, one JSON object a line,
to ``audit.checkpoint_file``. Verification holds the chain to every one of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from serve_app.audit.canonical import canonical_json
from serve_app.audit.chain import Anchor, utc_iso
from serve_app.auth.credentials import ConfigurationError, Credentials
from serve_app.settings import Settings

DOMAIN = b"medai-audit-checkpoint/v1\n"
"""Prefix of every signed message, so the signature means nothing anywhere else."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or trusted."""


def checkpoint_path(settings: Settings) -> Path:
    return settings.audit.checkpoint_file or settings.data_dir / "audit" / "checkpoints.jsonl"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    time: str
    """UTC, ``2026-11-25T10:00:00.000000Z``."""
    key_id: str
    signature: str
    """Ed25519 over ``DOMAIN + canonical JSON of the other four fields``, base64."""

    @staticmethod
    def message(seq: int, head_hash: str, time: str, key: str) -> bytes:
        fields = {"seq": seq, "head_hash": head_hash, "time": time, "key_id": key}
        return DOMAIN + canonical_json(fields).encode()

    def signed_message(self) -> bytes:
        return self.message(self.seq, self.head_hash, self.time, self.key_id)

    def anchor(self) -> Anchor:
        return Anchor(self.seq, self.head_hash)

    def to_line(self) -> str:
        return canonical_json(asdict(self)) + "\n"

    @classmethod
    def from_line(cls, line: str | bytes) -> Checkpoint:
        try:
            data: Any = json.loads(line.decode() if isinstance(line, bytes) else line)
            checkpoint = cls(**data)
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"unreadable checkpoint: {error}") from None
        types_ok = isinstance(checkpoint.seq, int) and all(
            isinstance(v, str)
            for v in (
                checkpoint.head_hash,
                checkpoint.time,
                checkpoint.key_id,
                checkpoint.signature,
            )
        )
        if not types_ok:
            raise CheckpointError("unreadable checkpoint: wrong field types")
        return checkpoint


class CheckpointSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_secret(cls, secret: str | bytes) -> CheckpointSigner:
        """The key is the SHA-256 of the secret (at least 32 bytes) as an Ed25519 seed."""
        raw = secret.encode() if isinstance(secret, str) else secret
        seed = hashlib.sha256(b"medai-audit-signing-key/v1\n" + raw).digest()
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_credentials(cls, credentials: Credentials) -> CheckpointSigner:
        """Load with ``load_credentials(settings, need={"audit_signing_key"})``."""
        if credentials.audit_signing_key is None:
            raise ConfigurationError("MEDAI_AUDIT_SIGNING_KEY is not set")
        return cls.from_secret(credentials.audit_signing_key.get_secret_value())

    def sign(self, seq: int, head_hash: str, time: datetime) -> Checkpoint:
        stamp = utc_iso(time)
        message = Checkpoint.message(seq, head_hash, stamp, self.key_id)
        signature = base64.b64encode(self._private_key.sign(message)).decode()
        return Checkpoint(seq, head_hash, stamp, self.key_id, signature)

    def verifier(self) -> CheckpointVerifier:
        return CheckpointVerifier([self.public_key])


class CheckpointVerifier:
    """Checks signatures with public keys only: a verifier cannot sign."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in public_keys}

    def check(self, checkpoint: Checkpoint) -> None:
        key = self._keys.get(checkpoint.key_id)
        if key is None:
            raise CheckpointError(f"checkpoint at seq {checkpoint.seq}: unknown signing key")
        try:
            key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_message())
        except (InvalidSignature, ValueError):
            raise CheckpointError(f"checkpoint at seq {checkpoint.seq}: bad signature") from None

    def anchors(self, checkpoints: Iterable[Checkpoint]) -> list[Anchor]:
        """The checkpoints as trusted anchors, each signature checked, seqs increasing."""
        anchors: list[Anchor] = []
        for checkpoint in checkpoints:
            self.check(checkpoint)
            if anchors and checkpoint.seq <= anchors[-1].seq:
                raise CheckpointError(f"checkpoint at seq {checkpoint.seq} is out of order")
            anchors.append(checkpoint.anchor())
        return anchors


class CheckpointLog:
    """An append-only JSON-lines file, fsynced after every checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _drop_torn_line(fd)
            # NOTE: one write of a whole line with O_APPEND: a crash leaves at most a
            # torn last line, which read() ignores and the next append removes.
            os.write(fd, checkpoint.to_line().encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[Checkpoint]:
        try:
            # NOTE: bytes, decoded a line at a time: bytes that are not UTF-8 are then a
            # CheckpointError (an invalid trail), and in a torn last line they are ignored.
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        # The last element is b"" after a final newline, or a torn line: both are dropped.
        return [Checkpoint.from_line(line) for line in lines[:-1] if line]

    def latest(self) -> Checkpoint | None:
        checkpoints = self.read()
        return checkpoints[-1] if checkpoints else None


def _drop_torn_line(fd: int) -> None:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    text = os.pread(fd, size, 0)
    os.ftruncate(fd, text.rfind(b"\n") + 1)
