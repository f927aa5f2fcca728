"""Signed checkpoints of the audit chain, kept apart from the database.

Anyone who can write to the database can re-hash the whole chain, or cut off its newest
rows, and leave a chain that is consistent. A checkpoint is an Ed25519 signature over
``(seq, head_hash, time)`` under a key the database never holds (derived from the
``MEDAI_AUDIT_SIGNING_KEY`` secret); checkpoints are appended, one JSON object a line,
to ``audit.checkpoint_file`` and to each of ``audit.checkpoint_copies``. Verification
holds the chain to every one of them.

Checkpoints are chained to each other too (format 2): each carries its ``counter`` in
the file and ``prev``, the SHA-256 of the line before it, so a line cannot be dropped,
moved or replayed from an older copy without breaking the next one's signature. A
``handover`` checkpoint, signed by the new key and co-signed by the old, moves the trail
to a new signing key; a ``reanchor`` checkpoint restarts signing after an operator's
audited decision (``medai audit reanchor``). Format 1 lines (no counter) still verify as
the file's first lines.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from serve_app.audit.chain import GENESIS_HASH, Anchor, utc_iso
from serve_app.auth.credentials import ConfigurationError, Credentials
from serve_app.canonical import canonical_json
from serve_app.settings import Settings

DOMAIN = b"medai-audit-checkpoint/v1\n"
"""Prefix of every format-1 signed message, so the signature means nothing elsewhere."""
DOMAIN_V2 = b"medai-audit-checkpoint/v2\n"


TAIL_BYTES = 64 * 1024
"""More than one checkpoint line is ever long."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or trusted."""


class CheckpointKind(StrEnum):
    SIGN = "sign"
    """The writer signed the chain's head."""
    HANDOVER = "handover"
    """The first checkpoint under a new key, co-signed by the key before it."""
    REANCHOR = "reanchor"
    """An operator restarted signing over a trail the writer refused (see the chain's
    ``audit.reanchor`` entry at this seq for why)."""


def checkpoint_path(settings: Settings) -> Path:
    return settings.audit.checkpoint_file or settings.data_dir / "audit" / "checkpoints.jsonl"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The raw public key in base64: how ``audit.trusted_public_keys`` lists keys."""
    return base64.b64encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError:
        raise ConfigurationError("a trusted audit key is not a base64 Ed25519 key") from None


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    time: str
    """UTC, ``2026-11-25T10:00:00.000000Z``."""
    key_id: str
    signature: str
    """Ed25519 over ``signed_message()``, base64."""
    counter: int | None = None
    """Format 2: this checkpoint's place in the file, 1, 2, 3, ..."""
    prev: str | None = None
    """Format 2: SHA-256 of the line before it (``GENESIS_HASH`` for the first)."""
    kind: str | None = None
    """Format 2: a ``CheckpointKind``."""
    cosigner: str | None = None
    """A handover's previous key id, whose ``cosignature`` is over the same message."""
    cosignature: str | None = None

    @property
    def format(self) -> int:
        return 1 if self.counter is None else 2

    def signed_message(self) -> bytes:
        if self.format == 1:
            fields: dict[str, Any] = {
                "seq": self.seq, "head_hash": self.head_hash, "time": self.time,
                "key_id": self.key_id,
            }  # fmt: skip
            return DOMAIN + canonical_json(fields).encode()
        fields = {
            k: v
            for k, v in asdict(self).items()
            if v is not None and k not in ("signature", "cosignature")
        }
        return DOMAIN_V2 + canonical_json(fields).encode()

    def anchor(self) -> Anchor:
        return Anchor(self.seq, self.head_hash)

    def to_line(self) -> str:
        return canonical_json({k: v for k, v in asdict(self).items() if v is not None}) + "\n"

    def line_hash(self) -> str:
        return hashlib.sha256(self.to_line().encode()).hexdigest()

    @classmethod
    def from_line(cls, line: str | bytes) -> Checkpoint:
        try:
            data: Any = json.loads(line.decode() if isinstance(line, bytes) else line)
            checkpoint = cls(**data)
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"unreadable checkpoint: {error}") from None
        texts = (checkpoint.head_hash, checkpoint.time, checkpoint.key_id, checkpoint.signature)
        optional = (checkpoint.prev, checkpoint.kind, checkpoint.cosigner, checkpoint.cosignature)
        types_ok = (
            _is_int(checkpoint.seq)
            and all(isinstance(v, str) for v in texts)
            and (checkpoint.counter is None or _is_int(checkpoint.counter))
            and all(v is None or isinstance(v, str) for v in optional)
        )
        if not types_ok:
            raise CheckpointError("unreadable checkpoint: wrong field types")
        if checkpoint.format == 2 and (checkpoint.prev is None or checkpoint.kind is None):
            raise CheckpointError(f"checkpoint {checkpoint.counter}: prev and kind are required")
        return checkpoint


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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

    def sign(
        self,
        seq: int,
        head_hash: str,
        time: datetime,
        after: Checkpoint | None = None,
        kind: CheckpointKind = CheckpointKind.SIGN,
        cosigner: CheckpointSigner | None = None,
        counter: int | None = None,
    ) -> Checkpoint:
        """The checkpoint that follows ``after``, the file's last line (``None``: first).

        ``counter`` defaults to the one after ``after``'s; give it when ``after`` is a
        format-1 line (the file's line count plus one).
        """
        if counter is None:
            counter = 1 if after is None else _counter(after) + 1
        unsigned = Checkpoint(
            seq=seq,
            head_hash=head_hash,
            time=utc_iso(time),
            key_id=self.key_id,
            signature="",
            counter=counter,
            prev=GENESIS_HASH if after is None else after.line_hash(),
            kind=str(kind),
            cosigner=None if cosigner is None else cosigner.key_id,
        )
        message = unsigned.signed_message()
        return replace(
            unsigned,
            signature=self._sign(message),
            cosignature=None if cosigner is None else cosigner._sign(message),
        )

    def _sign(self, message: bytes) -> str:
        return base64.b64encode(self._private_key.sign(message)).decode()

    def verifier(self, trusted: Iterable[Ed25519PublicKey] = ()) -> CheckpointVerifier:
        """A verifier of this key and the ``trusted`` ones (earlier keys of the trail)."""
        return CheckpointVerifier([self.public_key, *trusted])


def _counter(checkpoint: Checkpoint) -> int:
    if checkpoint.counter is None:
        raise CheckpointError("a format-1 checkpoint has no counter: pass the next one")
    return checkpoint.counter


@dataclass(frozen=True)
class CheckedLog:
    """A checkpoint file that verified: its anchors, and what an auditor should see."""

    anchors: list[Anchor]
    newest: Checkpoint | None
    lines: int
    reanchors: list[int]
    """Seqs at which an operator re-anchored the trail."""


class CheckpointVerifier:
    """Checks signatures with public keys only (a keyring): a verifier cannot sign."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in public_keys}

    def check(self, checkpoint: Checkpoint) -> None:
        self._check_signature(checkpoint, checkpoint.key_id, checkpoint.signature)
        if checkpoint.cosigner is not None:
            if checkpoint.cosignature is None:
                raise CheckpointError(f"checkpoint at seq {checkpoint.seq}: cosignature missing")
            self._check_signature(checkpoint, checkpoint.cosigner, checkpoint.cosignature)

    def _check_signature(self, checkpoint: Checkpoint, key: str, signature: str) -> None:
        public_key = self._keys.get(key)
        if public_key is None:
            raise CheckpointError(
                f"checkpoint at seq {checkpoint.seq}: unknown signing key {key}"
                " (add its public key to audit.trusted_public_keys)"
            )
        try:
            public_key.verify(base64.b64decode(signature), checkpoint.signed_message())
        except (InvalidSignature, ValueError):
            raise CheckpointError(f"checkpoint at seq {checkpoint.seq}: bad signature") from None

    def check_log(
        self,
        checkpoints: Sequence[Checkpoint],
        before: Checkpoint | None = None,
        lines_before: int = 0,
        anchor_before: Anchor | None = None,
    ) -> CheckedLog:
        """Every signature, and the file's own chain: counters, links, key changes.

        ``before``, ``lines_before`` and ``anchor_before``: what an earlier check of the
        file's first lines proved, when ``checkpoints`` are the lines after them.
        """
        anchors: list[Anchor] = [anchor_before] if anchor_before is not None else []
        reanchors: list[int] = []
        for index, checkpoint in enumerate(checkpoints, start=lines_before + 1):
            self.check(checkpoint)
            if checkpoint.format == 1:
                if before is not None and before.format == 2:
                    raise CheckpointError(f"line {index}: a format-1 checkpoint after format 2")
            else:
                _check_link(index, checkpoint, before)
            kind = checkpoint.kind or CheckpointKind.SIGN
            if kind == CheckpointKind.REANCHOR:
                reanchors.append(checkpoint.seq)
            elif (
                before is not None
                and checkpoint.key_id != before.key_id
                and (kind != CheckpointKind.HANDOVER or checkpoint.cosigner != before.key_id)
            ):
                raise CheckpointError(
                    f"checkpoint at seq {checkpoint.seq}: key {checkpoint.key_id} follows key"
                    f" {before.key_id} without a handover co-signed by it"
                )
            same_seq_ok = kind != CheckpointKind.SIGN
            if anchors and (
                checkpoint.seq < anchors[-1].seq
                or (checkpoint.seq == anchors[-1].seq and not same_seq_ok)
            ):
                raise CheckpointError(f"checkpoint at seq {checkpoint.seq} is out of order")
            if not anchors or checkpoint.seq != anchors[-1].seq:
                anchors.append(checkpoint.anchor())
            elif checkpoint.head_hash != anchors[-1].head_hash:
                raise CheckpointError(f"checkpoints at seq {checkpoint.seq} disagree")
            before = checkpoint
        if anchor_before is not None:
            anchors = anchors[1:]
        return CheckedLog(anchors, before, lines_before + len(checkpoints), reanchors)

    def anchors(self, checkpoints: Sequence[Checkpoint]) -> list[Anchor]:
        """The checkpoints as trusted anchors, each signature checked, seqs increasing."""
        return self.check_log(checkpoints).anchors


def _check_link(index: int, checkpoint: Checkpoint, before: Checkpoint | None) -> None:
    expected_prev = GENESIS_HASH if before is None else before.line_hash()
    if checkpoint.counter != index:
        raise CheckpointError(
            f"checkpoint {checkpoint.counter} stands at line {index}: a checkpoint before it"
            " was removed or the file was reordered"
        )
    if checkpoint.prev != expected_prev:
        raise CheckpointError(f"checkpoint {checkpoint.counter} does not follow the line before it")


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

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> list[Checkpoint]:
        return self.read_from(0)[0]

    def read_from(self, offset: int) -> tuple[list[Checkpoint], int]:
        """The checkpoints after byte ``offset`` (a line's end), and where the last ends."""
        try:
            with self.path.open("rb") as file:
                file.seek(offset)
                # NOTE: bytes, decoded a line at a time: bytes that are not UTF-8 are then
                # a CheckpointError (an invalid trail); in a torn last line, ignored.
                data = file.read()
        except FileNotFoundError:
            return [], 0
        # The last element is b"" after a final newline, or a torn line: both are dropped.
        lines = data.split(b"\n")[:-1]
        end = offset + sum(len(line) + 1 for line in lines)
        return [Checkpoint.from_line(line) for line in lines if line], end

    def line_ending_at(self, offset: int) -> bytes | None:
        """The whole line that ends at byte ``offset``, without its newline."""
        try:
            with self.path.open("rb") as file:
                start = max(0, offset - TAIL_BYTES)
                file.seek(start)
                data = file.read(offset - start)
        except FileNotFoundError:
            return None
        if not data.endswith(b"\n"):
            return None
        return data[:-1].rsplit(b"\n", 1)[-1]

    def latest(self) -> Checkpoint | None:
        """The last whole line, read from the end of the file (cheap on a long file)."""
        try:
            with self.path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - TAIL_BYTES))
                data = file.read()
        except FileNotFoundError:
            return None
        lines = data.split(b"\n")[:-1]  # the last element: b"" or a torn line
        if size > TAIL_BYTES:
            lines = lines[1:]  # the first may be cut
        return Checkpoint.from_line(lines[-1]) if lines and lines[-1] else None


class CheckpointCopies:
    """The checkpoint file and its copies (``audit.checkpoint_copies``), kept in step.

    The copies are for storage the database's administrators cannot rewrite (another
    host's append-only mount, an object store with retention): a primary file cut
    short, deleted or rolled back to an older copy then disagrees with them.
    """

    def __init__(self, primary: CheckpointLog, copies: Sequence[CheckpointLog] = ()) -> None:
        self.primary = primary
        self.copies = list(copies)

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckpointCopies:
        copies = [CheckpointLog(path) for path in settings.audit.checkpoint_copies]
        return cls(CheckpointLog(checkpoint_path(settings)), copies)

    def append(self, checkpoint: Checkpoint) -> None:
        for log in (self.primary, *self.copies):
            log.append(checkpoint)

    def read(self) -> list[Checkpoint]:
        """The primary's checkpoints, once every copy agrees with them."""
        return self.read_from(0)[0]

    def read_from(self, offset: int) -> tuple[list[Checkpoint], int]:
        """The primary's checkpoints after byte ``offset``, once every copy agrees.

        A copy may lack the primary's last line (a crash between the two appends); any
        other difference is a ``CheckpointError``.
        """
        lines, end = self.primary.read_from(offset)
        for log in self.copies:
            copy, _ = log.read_from(offset)
            if copy != lines[: len(copy)] or len(copy) < len(lines) - 1:
                raise CheckpointError(
                    f"the checkpoint file ({len(lines)} checkpoints from byte {offset})"
                    f" disagrees with its copy {log.path} ({len(copy)}): one of them was cut,"
                    " rolled back or rewritten"
                )
        return lines, end

    def line_ending_at(self, offset: int) -> bytes | None:
        """The line ending at ``offset`` when the file and every copy hold the same one."""
        lines = {log.line_ending_at(offset) for log in (self.primary, *self.copies)}
        return lines.pop() if len(lines) == 1 else None

    def newest(self) -> tuple[Checkpoint | None, int]:
        """The file's last checkpoint and its line count, read from the end of the files.

        Every copy must end with the same line, or lack just that one (``repair``
        completes it); otherwise a ``CheckpointError``.
        """
        newest = self.primary.latest()
        for log in self.copies:
            last = log.latest()
            lacks_newest = newest is not None and newest.prev == (
                GENESIS_HASH if last is None else last.line_hash()
            )
            if last != newest and not lacks_newest:
                raise CheckpointError(
                    f"the checkpoint file and its copy {log.path} end differently: one of"
                    " them was cut, rolled back or rewritten"
                )
        if newest is None:
            return None, 0
        if newest.counter is not None:
            return newest, newest.counter
        return newest, len(self.primary.read())  # format 1: counted once

    def repair(self) -> None:
        """Append to each copy the last line it lacks (after ``newest`` accepted them)."""
        newest = self.primary.latest()
        for log in self.copies:
            if newest is not None and log.latest() != newest:
                log.append(newest)

    def exists(self) -> bool:
        return self.primary.exists()


def _drop_torn_line(fd: int) -> None:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    text = os.pread(fd, size, 0)
    os.ftruncate(fd, text.rfind(b"\n") + 1)
