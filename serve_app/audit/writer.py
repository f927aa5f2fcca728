"""The hash chain's single writer, without Ray: group-commit, then sign when due.

The audit-writer deployment (a ``DatabaseTrail``) holds one: it calls ``write`` once per
batch of events, ``checkpoint_if_due`` from a periodic task (so a quiet tail gets signed
within ``audit.checkpoint_every_s``) and ``close`` when it stops.

A writer signs only a chain it has checked. At start it takes the single-writer lease,
checks the checkpoint file (and its copies), and holds the database's chain to the
newest checkpoint: the entry there must carry the signed hash, every later entry must
link to it, and the unsigned tail must be no longer than a writer leaves behind. Then it
signs the head. Before every append it compares the database's head with the one it
committed last. Whatever disagrees halts it (``WriterState.HALTED``): writes answer 503,
the log raises an alarm, and only an operator's audited ``medai audit reanchor`` signs
again. Reads and verification go on, so an auditor can see what went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from serve_app.audit.chain import GENESIS_HASH, Anchor, ChainVerifier, Verification
from serve_app.audit.checkpoints import (
    Checkpoint,
    CheckpointCopies,
    CheckpointError,
    CheckpointKind,
    CheckpointLog,
    CheckpointSigner,
    parse_public_key,
)
from serve_app.audit.events import AuditAction, AuditEvent, utc_now
from serve_app.audit.lease import WriterLease, writer_lease
from serve_app.audit.replay import TrailState, disagreement
from serve_app.audit.store import AuditStore, HeadMoved
from serve_app.audit.tail import TailLimits, UnsignedTail, gap
from serve_app.audit.verification import Progress, TrailVerifier
from serve_app.auth.credentials import Credentials
from serve_app.errors import ServiceUnavailable
from serve_app.settings import Settings
from serve_app.storage.database import Database
from serve_app.storage.models import AuditLog

log = logging.getLogger(__name__)

RETRY_HALTED_S = 5.0
"""A halted writer looks at the trail again at most this often (an operator may have
re-anchored it meanwhile)."""


class TrailMismatch(ServiceUnavailable):
    """The tables that decide what serves disagree with the audit trail."""


class WriterState(StrEnum):
    STARTING = "starting"
    """Has not yet checked the trail."""
    STANDBY = "standby"
    """Another writer holds the lease."""
    ACTIVE = "active"
    """Appends and signs."""
    HALTED = "halted"
    """The trail disagrees with its checkpoints or moved underneath; needs an operator."""


class ChainWriter:
    def __init__(
        self,
        store: AuditStore,
        log: CheckpointCopies | CheckpointLog,
        signer: CheckpointSigner,
        every_entries: int,
        every_s: float,
        clock: Callable[[], datetime] = utc_now,
        *,
        limits: TailLimits | None = None,
        lease: WriterLease | None = None,
        lease_wait_s: float = 0.0,
        previous: CheckpointSigner | None = None,
        trusted: Iterable[Ed25519PublicKey] = (),
    ) -> None:
        self.store = store
        self.log = log if isinstance(log, CheckpointCopies) else CheckpointCopies(log)
        self.signer = signer
        self._every_entries = every_entries
        self._every_s = every_s
        self._clock = clock
        self.limits = limits or TailLimits(every_entries, 2 * every_s)
        self._lease = lease
        self._lease_wait_s = lease_wait_s
        self._previous = previous
        keyring = [*trusted] + ([previous.public_key] if previous is not None else [])
        self.verifier = signer.verifier(keyring)
        self.state = WriterState.STARTING
        self.reason: str | None = None
        """Why the writer is not active."""
        self._retry_at = 0.0
        self._head: tuple[int, str] | None = None
        self._last: Checkpoint | None = None
        self._lines = 0
        self._signed_at: datetime | None = None
        self._lock: asyncio.Lock | None = None  # made inside the running loop
        self._replayed = TrailState()
        self._replayed_seq = 0
        self._progress: Progress | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, credentials: Credentials, database: Database
    ) -> ChainWriter:
        """``credentials`` from ``load_credentials(settings, need={"audit_signing_key"})``."""
        previous = credentials.audit_previous_signing_key
        audit = settings.audit
        return cls(
            AuditStore(database),
            CheckpointCopies.from_settings(settings),
            CheckpointSigner.from_credentials(credentials),
            audit.checkpoint_every_entries,
            audit.checkpoint_every_s,
            limits=TailLimits.from_settings(audit),
            lease=writer_lease(settings),
            lease_wait_s=audit.lease_wait_s,
            previous=(
                CheckpointSigner.from_secret(previous.get_secret_value()) if previous else None
            ),
            trusted=[parse_public_key(key) for key in audit.trusted_public_keys],
        )

    def _mutex(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def start(self) -> None:
        """Take the lease, check the trail, sign its head; or stand by, or halt.

        Raises ``ServiceUnavailable`` (with the reason) unless the writer is active.
        """
        async with self._mutex():
            await self._start()

    async def _start(self) -> None:
        if self.state is WriterState.ACTIVE:
            return
        if self.state is WriterState.HALTED and time.monotonic() < self._retry_at:
            raise ServiceUnavailable(self._unavailable())
        self._retry_at = time.monotonic() + RETRY_HALTED_S
        if self._lease is not None and not await self._lease.acquire(self._lease_wait_s):
            self._set(WriterState.STANDBY, "another audit writer holds the trail's lease")
            raise ServiceUnavailable(self._unavailable())
        try:
            newest, lines = await self._newest()
            head = await self.store.head()
            problem = await self._check_tail(newest, head)
            if problem is None:
                problem = self._check_key(newest)
        except CheckpointError as error:
            problem = str(error)
        if problem is not None:
            await self._halt(problem)
            raise ServiceUnavailable(self._unavailable())
        await asyncio.to_thread(self.log.repair)
        self._head, self._last, self._lines = head, newest, lines
        self._signed_at = self._clock()
        self._set(WriterState.ACTIVE, None)
        handover = newest is not None and newest.key_id != self.signer.key_id
        if handover:
            await self._sign(CheckpointKind.HANDOVER)
        elif self._unsigned() > 0:
            # NOTE: signed now, not when due: the tail was checked a moment ago.
            await self._sign(CheckpointKind.SIGN)

    async def _newest(self) -> tuple[Checkpoint | None, int]:
        """The newest checkpoint, its signature checked, and the file's line count.

        NOTE: only the file's end is read, so a start costs the same after a year: the
        lines before it are verification's business (each line commits to those before).
        """
        newest, lines = await asyncio.to_thread(self.log.newest)
        if newest is not None:
            self.verifier.check(newest)
        return newest, lines

    async def _check_tail(self, newest: Checkpoint | None, head: tuple[int, str]) -> str | None:
        """Why the entries from the newest checkpoint on cannot be signed, or ``None``."""
        signed = Anchor(0, GENESIS_HASH) if newest is None else newest.anchor()
        if newest is None and head[0] > self.limits.max_entries and not self.log.exists():
            return (
                f"the checkpoint file {self.log.primary.path} is missing but the"
                f" database holds {head[0]} audit entries"
            )
        if head[0] < signed.seq:
            return (
                f"the database's chain ends at seq {head[0]} but a signed checkpoint covers"
                f" seq {signed.seq}: its newest entries were cut off"
            )
        if head[0] - signed.seq > self.limits.max_entries:
            return gap(UnsignedTail(head[0] - signed.seq), self.limits)
        tail = UnsignedTail()
        chain: ChainVerifier | None = None if newest is not None else ChainVerifier()
        async for page in self.store.entries_from(max(signed.seq, 1)):
            for entry in page:
                if chain is None:  # the newest checkpoint's own entry
                    if entry.seq != signed.seq or entry.entry_hash != signed.head_hash:
                        return (
                            f"the chain at seq {signed.seq} differs from its newest signed"
                            " checkpoint: it was rewritten"
                        )
                    chain = ChainVerifier(start=signed)
                    continue
                tail = tail.add(entry.timestamp)
            if chain is not None:
                await asyncio.to_thread(chain.feed, [e for e in page if e.seq > signed.seq])
        if chain is not None and (result := chain.result()).first_bad_seq is not None:
            return str(result.reason)
        return gap(tail, self.limits)

    def _check_key(self, newest: Checkpoint | None) -> str | None:
        if newest is None or newest.key_id == self.signer.key_id:
            return None
        if self._previous is not None and self._previous.key_id == newest.key_id:
            return None
        return (
            f"the trail was last signed by key {newest.key_id}, not this writer's"
            f" {self.signer.key_id}: set MEDAI_AUDIT_PREVIOUS_SIGNING_KEY to the old key for"
            " the handover (and list its public key in audit.trusted_public_keys), or"
            " re-anchor with `medai audit reanchor`"
        )

    async def _halt(self, reason: str) -> None:
        # NOTE: the lease goes, so an operator's `medai audit reanchor` can run beside
        # the server; this writer takes the lease back when it next looks.
        self._set(WriterState.HALTED, reason)
        log.critical("audit trail halted: %s", reason)
        if self._lease is not None:
            await self._lease.release()

    def _set(self, state: WriterState, reason: str | None) -> None:
        self.state, self.reason = state, reason

    def _unavailable(self) -> str:
        if self.state is WriterState.HALTED:
            return (
                f"the audit trail is halted: {self.reason}. Nothing was stored; an operator"
                " must investigate and re-anchor (medai audit reanchor)"
            )
        return f"the audit trail is not writable ({self.reason}); nothing was stored"

    async def write(self, events: Sequence[AuditEvent]) -> list[AuditLog]:
        """Commit ``events`` as one transaction; return once they are durable."""
        async with self._mutex():
            await self._start()
            await self._check_lease()
            try:
                rows = await self.store.append(events, expected_head=self._head)
            except HeadMoved as error:
                await self._moved(error)
                raise
            if rows:
                self._head = (rows[-1].seq, rows[-1].entry_hash)
            # NOTE: the rows are durable: their callers must hear so. A writer that cannot
            # sign has halted (and said why); the next write is refused before it commits.
            with contextlib.suppress(ServiceUnavailable):
                await self._checkpoint_if_due()
            return rows

    async def _check_lease(self) -> None:
        if self._lease is not None and not self._lease.held():
            self._set(WriterState.STANDBY, "the writer lost its lease")
            raise ServiceUnavailable(self._unavailable())

    async def _moved(self, error: HeadMoved) -> None:
        # NOTE: signing what this writer knows it committed pins the truth: verification
        # then names the rewrite, and no later writer can sign over it.
        if self._unsigned() > 0:
            await self._sign(CheckpointKind.SIGN)
        await self._halt(error.detail)

    async def checkpoint_if_due(self) -> Checkpoint | None:
        async with self._mutex():
            # NOTE: the periodic task may call this first: a writer that has not yet
            # started knows no head, and would leave a predecessor's tail unsigned.
            await self._start()
            return await self._checkpoint_if_due()

    @property
    def _signed_seq(self) -> int:
        return self._last.seq if self._last is not None else 0

    def _unsigned(self) -> int:
        """How many entries this writer knows of are newer than its last checkpoint."""
        return 0 if self._head is None else self._head[0] - self._signed_seq

    async def _checkpoint_if_due(self) -> Checkpoint | None:
        if (unsigned := self._unsigned()) <= 0:
            return None
        waited = self._signed_at is None or (
            (self._clock() - self._signed_at).total_seconds() >= self._every_s
        )
        if waited or unsigned >= self._every_entries:
            return await self._sign(CheckpointKind.SIGN)
        return None

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the newest committed head now, unless it is already signed."""
        async with self._mutex():
            await self._start()
            return await self._sign(CheckpointKind.SIGN) if self._unsigned() > 0 else None

    async def _sign(self, kind: CheckpointKind) -> Checkpoint | None:
        assert self._head is not None  # _start() set it
        seq, head_hash = self._head
        if seq == 0 and kind is CheckpointKind.SIGN:
            return None
        await self._check_lease()
        on_file = await asyncio.to_thread(self.log.primary.latest)
        if on_file != self._last:
            await self._halt(
                "the checkpoint file changed underneath the writer: its last line is not the"
                " checkpoint this writer signed last (deleted, cut or rolled back?)"
            )
            raise ServiceUnavailable(self._unavailable())
        now = self._clock()
        checkpoint = self.signer.sign(
            seq,
            head_hash,
            now,
            after=self._last,
            kind=kind,
            cosigner=self._previous if kind is CheckpointKind.HANDOVER else None,
            counter=self._lines + 1,
        )
        await asyncio.to_thread(self.log.append, checkpoint)
        self._last, self._lines = checkpoint, self._lines + 1
        self._signed_at = now
        return checkpoint

    async def reanchor(self, actor: str, reason: str) -> tuple[Checkpoint, Verification]:
        """An operator's decision to sign again over a trail the writer refused.

        Appends an ``audit.reanchor`` entry naming who, why and what verification found,
        then signs a ``reanchor`` checkpoint over it. The checkpoint file must be
        readable (move a damaged one aside first); earlier checkpoints stay and are still
        enforced, so a rewritten chain stays visibly invalid.
        """
        async with self._mutex():
            if self._lease is not None and not await self._lease.acquire(self._lease_wait_s):
                raise ServiceUnavailable("another audit writer holds the lease: stop it first")
            newest, lines = await self._newest()
            found = await self.verify(full=True)
            details: dict[str, Any] = {
                "reason": reason,
                "newest_checkpoint": None if newest is None else {
                    "seq": newest.seq, "counter": lines, "key_id": newest.key_id,
                },
                "verification": {
                    "valid": found.valid, "entries": found.entries,
                    "first_bad_seq": found.first_bad_seq, "reason": found.reason,
                },
            }  # fmt: skip
            event = AuditEvent(
                actor=actor,
                role="operator",
                action=AuditAction.AUDIT_REANCHOR,
                object_type="audit",
                details=details,
            )
            rows = await self.store.append([event])
            self._head = (rows[-1].seq, rows[-1].entry_hash)
            self._last, self._lines = newest, lines
            checkpoint = await self._sign(CheckpointKind.REANCHOR)
            assert checkpoint is not None
            self._set(WriterState.ACTIVE, None)
            return checkpoint, found

    async def check_tables(self) -> None:
        """Raise ``TrailMismatch`` when ``model_versions`` or ``routes`` hold what the
        trail's entries do not say: an edit of the tables alone must never serve."""
        problem = await self._tables_problem()
        if problem is not None:
            # NOTE: once more: a registry change may have committed between the reads.
            problem = await self._tables_problem()
        if problem is not None:
            log.critical("audit trail and tables disagree: %s", problem)
            raise TrailMismatch(f"the registry's tables disagree with the audit trail: {problem}")

    async def _tables_problem(self) -> str | None:
        versions, routes = await self.store.tables()
        # NOTE: entries after the tables: whatever the tables hold was committed with
        # its entry, which this read then sees too.
        for entry in await self.store.replayed_entries(self._replayed_seq):
            self._replayed.feed([entry])
            self._replayed_seq = entry.seq
        return disagreement(self._replayed, versions, routes)

    async def verify(self, page_size: int = 1000, full: bool = False) -> Verification:
        """Verify the trail, going on from the last valid verification unless ``full``."""
        trail = TrailVerifier(
            self.store, self.log, self.verifier, self.limits, self._clock, page_size
        )
        verification, progress = await trail.verify(None if full else self._progress)
        self._progress = progress
        return verification

    async def close(self) -> None:
        if self.state is WriterState.ACTIVE:
            await self.checkpoint()
        if self._lease is not None:
            await self._lease.release()
