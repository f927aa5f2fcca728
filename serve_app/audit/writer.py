"""The single audit writer's logic, without Ray: group-commit, then sign when due.

The Ray deployment holds one ``AuditWriter``: it calls ``write`` once per batch of
events, ``checkpoint_if_due`` from a periodic task (so a quiet tail gets signed within
``audit.checkpoint_every_s``) and ``close`` when it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from serve_app.audit.chain import Verification
from serve_app.audit.checkpoints import (
    Checkpoint,
    CheckpointLog,
    CheckpointSigner,
    checkpoint_path,
)
from serve_app.audit.events import AuditEvent, utc_now
from serve_app.audit.store import AuditStore
from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from serve_app.storage.database import Database
from serve_app.storage.models import AuditLog


class AuditWriter:
    def __init__(
        self,
        store: AuditStore,
        log: CheckpointLog,
        signer: CheckpointSigner,
        every_entries: int,
        every_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.log = log
        self.signer = signer
        self._every_entries = every_entries
        self._every_s = every_s
        self._clock = clock
        self._head: tuple[int, str] | None = None
        self._signed_seq = 0
        self._signed_at: datetime | None = None
        self._started = False
        self._lock: asyncio.Lock | None = None  # made inside the running loop

    @classmethod
    def from_settings(
        cls, settings: Settings, credentials: Credentials, database: Database
    ) -> AuditWriter:
        """``credentials`` from ``load_credentials(settings, need={"audit_signing_key"})``."""
        return cls(
            AuditStore(database),
            CheckpointLog(checkpoint_path(settings)),
            CheckpointSigner.from_credentials(credentials),
            settings.audit.checkpoint_every_entries,
            settings.audit.checkpoint_every_s,
        )

    async def start(self) -> None:
        """Pick up the head and the newest checkpoint left by an earlier writer."""
        self._head = await self.store.head()
        latest = await asyncio.to_thread(self.log.latest)
        self._signed_seq = latest.seq if latest is not None else 0
        self._signed_at = self._clock()
        self._started = True

    async def write(self, events: Sequence[AuditEvent]) -> list[AuditLog]:
        """Commit ``events`` as one transaction; return once they are durable."""
        if not self._started:
            await self.start()
        rows = await self.store.append(events)
        if rows and (self._head is None or rows[-1].seq > self._head[0]):
            self._head = (rows[-1].seq, rows[-1].entry_hash)
        await self.checkpoint_if_due()
        return rows

    async def checkpoint_if_due(self) -> Checkpoint | None:
        # NOTE: the periodic task may call this first: a writer that has not yet started
        # knows no head, and would leave a predecessor's unsigned tail unsigned.
        if not self._started:
            await self.start()
        if self._head is None or self._head[0] <= self._signed_seq:
            return None
        waited = self._signed_at is None or (
            (self._clock() - self._signed_at).total_seconds() >= self._every_s
        )
        if waited or self._head[0] - self._signed_seq >= self._every_entries:
            return await self.checkpoint()
        return None

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the newest committed head now, unless it is already signed."""
        if not self._started:
            await self.start()
        if self._lock is None:
            self._lock = asyncio.Lock()
        # NOTE: one at a time, so the file's seqs only grow (verification requires it).
        async with self._lock:
            assert self._head is not None  # start() set it
            seq, head_hash = self._head
            if seq == 0 or seq <= self._signed_seq:
                return None
            now = self._clock()
            checkpoint = self.signer.sign(seq, head_hash, now)
            await asyncio.to_thread(self.log.append, checkpoint)
            self._signed_seq, self._signed_at = seq, now
            return checkpoint

    async def verify(self, page_size: int = 1000) -> Verification:
        return await self.store.verify(self.log, self.signer.verifier(), page_size)

    async def close(self) -> None:
        await self.checkpoint()
