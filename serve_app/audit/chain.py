"""The audit hash chain, as pure functions over entries (no database).

``entry_hash = sha256(prev_hash || canonical_json(entry))``: ``prev_hash`` as its 32 raw
bytes, the entry as canonical JSON (sorted keys, no whitespace, UTC timestamps with
microseconds) of its fields other than the two hashes. The first entry has seq 1 and
``prev_hash = GENESIS_HASH``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from serve_app.canonical import canonical_json

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "timestamp",
    "actor",
    "role",
    "action",
    "object_type",
    "object_id",
    "model_version",
    "details",
)


class Entry(Protocol):
    """What the chain hashes: ``AuditEntry`` and ``AuditLog`` rows both fit."""

    @property
    def seq(self) -> int: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def role(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def object_type(self) -> str: ...
    @property
    def object_id(self) -> str | None: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


class Linked(Entry, Protocol):
    @property
    def prev_hash(self) -> str: ...
    @property
    def entry_hash(self) -> str: ...


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    timestamp: datetime
    actor: str
    role: str | None
    action: str
    object_type: str
    object_id: str | None
    model_version: str | None
    details: Mapping[str, Any]


@dataclass(frozen=True)
class ChainedEntry(AuditEntry):
    prev_hash: str
    entry_hash: str


def utc_iso(moment: datetime) -> str:
    """``2026-11-25T10:00:00.000000Z``; a naive datetime is refused, not guessed."""
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_entry(entry: Entry) -> str:
    fields: dict[str, Any] = {name: getattr(entry, name) for name in HASHED_FIELDS}
    fields["timestamp"] = utc_iso(entry.timestamp)
    return canonical_json(fields)


def entry_hash(prev_hash: str, entry: Entry) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_entry(entry).encode()).hexdigest()


def link(prev_hash: str, entry: Entry) -> ChainedEntry:
    """``entry`` with its place in the chain after ``prev_hash``."""
    fields = {name: getattr(entry, name) for name in HASHED_FIELDS}
    return ChainedEntry(**fields, prev_hash=prev_hash, entry_hash=entry_hash(prev_hash, entry))


def chain(entries: Iterable[Entry], prev_hash: str = GENESIS_HASH) -> list[ChainedEntry]:
    """``entries`` linked one after the other, the first after ``prev_hash``."""
    linked = []
    for entry in entries:
        linked.append(link(prev_hash, entry))
        prev_hash = linked[-1].entry_hash
    return linked


@dataclass(frozen=True)
class Anchor:
    """A trusted (seq, head_hash) pair: a verified signed checkpoint."""

    seq: int
    head_hash: str


@dataclass(frozen=True)
class Verification:
    valid: bool
    entries: int
    """Entries read."""
    head_hash: str
    """Stored hash of the last entry read (``GENESIS_HASH`` for an empty chain)."""
    first_bad_seq: int | None
    """The first seq that is altered, missing or out of place; ``None`` when valid."""
    reason: str | None = None
    checkpoint_seq: int | None = None
    """Seq of the newest checkpoint the chain was held to; ``None`` without one."""
    unsigned_entries: int = 0
    """Entries after the newest checkpoint, protected by the chain alone."""
    unsigned_since: datetime | None = None
    """Time of the oldest of them."""
    reanchored_at: tuple[int, ...] = ()
    """Seqs at which an operator re-anchored the trail (``medai audit reanchor``)."""
    incremental: bool = False
    """Went on from the last verification instead of reading everything."""


class ChainVerifier:
    """Checks a chain fed in seq order, a page at a time, against trusted anchors.

    Without anchors it proves the chain is internally consistent. A chain rewritten
    from some row on and re-hashed is consistent too: an anchor past that row catches
    it (``first_bad_seq`` is then the first seq after the last anchor that matched). An
    anchor beyond the chain's end catches a truncated tail.
    """

    def __init__(self, anchors: Sequence[Anchor] = (), start: Anchor | None = None) -> None:
        """``start``: a trusted entry to go on from (its successor is fed first)."""
        self._anchors = sorted(anchors, key=lambda a: a.seq)
        self._next_anchor = 0
        self._trusted_seq = 0 if start is None else start.seq
        self._expected_seq = self._trusted_seq + 1
        self._prev_hash = GENESIS_HASH if start is None else start.head_hash
        self._head_hash = self._prev_hash
        self._entries = 0
        self._bad: tuple[int, str] | None = None

    def feed(self, entries: Iterable[Linked]) -> None:
        for entry in entries:
            self._entries += 1
            self._head_hash = entry.entry_hash
            if self._bad is None:
                self._check(entry)

    def _check(self, entry: Linked) -> None:
        seq = entry.seq
        if seq != self._expected_seq:
            if seq > self._expected_seq:
                self._fail(self._expected_seq, f"seq {self._expected_seq} is missing")
            else:
                self._fail(seq, f"seq {seq} is out of order after {self._expected_seq - 1}")
            return
        if entry.prev_hash != self._prev_hash:
            self._fail(seq, f"seq {seq} does not link to the entry before it")
            return
        computed = entry_hash(self._prev_hash, entry)
        if computed != entry.entry_hash:
            self._fail(seq, f"seq {seq} was altered: its content does not match its hash")
            return
        self._prev_hash = computed
        self._expected_seq = seq + 1
        while (
            self._next_anchor < len(self._anchors) and self._anchors[self._next_anchor].seq <= seq
        ):
            anchor = self._anchors[self._next_anchor]
            if anchor.head_hash != computed or anchor.seq != seq:
                self._fail(
                    self._trusted_seq + 1,
                    f"the chain up to seq {anchor.seq} differs from its signed checkpoint:"
                    f" rewritten after seq {self._trusted_seq}",
                )
                return
            self._trusted_seq = seq
            self._next_anchor += 1

    def _fail(self, seq: int, reason: str) -> None:
        self._bad = (seq, reason)

    def result(self) -> Verification:
        checked = self._anchors[self._next_anchor - 1].seq if self._next_anchor else None
        if self._bad is None and self._next_anchor < len(self._anchors):
            last = self._expected_seq - 1
            newest = self._anchors[-1]
            self._fail(
                last + 1,
                f"the chain ends at seq {last} but a signed checkpoint covers seq {newest.seq}:"
                " its tail was cut off",
            )
        seq, reason = self._bad if self._bad is not None else (None, None)
        return Verification(
            valid=self._bad is None,
            entries=self._entries,
            head_hash=self._head_hash,
            first_bad_seq=seq,
            reason=reason,
            checkpoint_seq=checked,
        )


def verify(entries: Iterable[Linked], anchors: Sequence[Anchor] = ()) -> Verification:
    verifier = ChainVerifier(anchors)
    verifier.feed(entries)
    return verifier.result()
