"""Verifying the trail: the chain, its checkpoints, the results, the tables, the tail.

A full verification reads every entry and every checkpoint. The writer keeps what its
last valid verification proved (``Progress``), and the next one goes on from there: it
first confirms that the last entry and the last checkpoint line it proved are unchanged
(each commits to everything before it through its hash chain), then reads only what came
after, so a verification costs what was written since the last one. ``full`` reads
everything again: an entry altered in place, with the hashes after it left as they were,
is found only that way.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from serve_app.audit.chain import GENESIS_HASH, Anchor, ChainVerifier, Verification
from serve_app.audit.checkpoints import (
    Checkpoint,
    CheckpointCopies,
    CheckpointError,
    CheckpointLog,
    CheckpointVerifier,
)
from serve_app.audit.replay import TrailState, disagreement
from serve_app.audit.store import AuditStore, check_results, has_result
from serve_app.audit.tail import TailLimits, UnsignedTail, overdue


@dataclass(frozen=True)
class Progress:
    """What a valid verification proved, to go on from."""

    seq: int
    entry_hash: str
    """The last entry verified (``GENESIS_HASH`` at seq 0)."""
    offset: int
    """Where the last checkpoint line verified ends in the file (0: none)."""
    line: bytes | None
    last_checkpoint: Checkpoint | None
    lines: int
    newest_anchor: Anchor | None
    reanchored: tuple[int, ...]
    state: TrailState
    inferences: int


@dataclass(frozen=True)
class _Checkpoints:
    anchors: list[Anchor]
    """Anchors of the lines read this time."""
    offset: int
    line: bytes | None
    last: Checkpoint | None
    lines: int
    newest: Anchor | None
    reanchored: tuple[int, ...]


class TrailVerifier:
    def __init__(
        self,
        store: AuditStore,
        checkpoints: CheckpointCopies | None,
        verifier: CheckpointVerifier | None,
        limits: TailLimits | None,
        clock: Callable[[], datetime],
        page_size: int = 1000,
    ) -> None:
        self.store = store
        self.checkpoints = checkpoints
        self.verifier = verifier
        self.limits = limits
        self.clock = clock
        self.page_size = page_size

    async def verify(self, since: Progress | None = None) -> tuple[Verification, Progress | None]:
        """The verification, and what it proved when valid (``since``: go on from there)."""
        if since is not None and not await self._unchanged(since):
            since = None
        try:
            read = await self._read_checkpoints(since)
        except CheckpointError as error:
            return Verification(False, 0, GENESIS_HASH, None, str(error)), None
        now = self.clock()
        start = Anchor(since.seq, since.entry_hash) if since is not None else None
        done = start.seq if start is not None else 0
        bad: list[tuple[int, str]] = []
        # Checkpoints signed since over entries already verified: their hashes must match.
        earlier = [a for a in read.anchors if a.seq <= done]
        stored = await self.store.hashes_at([a.seq for a in earlier])
        bad += [
            (a.seq, f"the chain at seq {a.seq} differs from its signed checkpoint")
            for a in earlier
            if stored.get(a.seq) != a.head_hash
        ][:1]
        chain = ChainVerifier([a for a in read.anchors if a.seq > done], start)
        state = copy.deepcopy(since.state) if since is not None else TrailState()
        inferences = since.inferences if since is not None else 0
        signed_seq = read.newest.seq if read.newest is not None else 0
        tail = await self._old_tail(signed_seq, done)
        async for page in self.store.entries_from(done + 1, self.page_size):
            # NOTE: hashing a page is CPU work: off the event loop, so the writer's
            # commits go on while an auditor verifies.
            await asyncio.to_thread(chain.feed, page)
            state.feed(page)
            ids = [str(entry.object_id) for entry in page if has_result(entry)]
            inferences += len(ids)
            for entry in page:
                if entry.seq > signed_seq:
                    tail = tail.add(entry.timestamp)
            if not bad and (found := await check_results(page)) is not None:
                bad.append(found)
            if not bad and (repeated := await self.store.repeated_inference(ids)) is not None:
                bad.append((page[0].seq, f"inference {repeated} has more than one audit entry"))
        result = chain.result()
        if result.first_bad_seq is not None:
            bad.append((result.first_bad_seq, str(result.reason)))
        bad.sort()
        problems = [reason for _, reason in bad[:1]]
        problems += await self._table_problems(state, inferences)
        if self.limits is not None and self.checkpoints is not None:
            late = overdue(tail, self.limits, now)
            problems += [late] if late is not None else []
        verification = Verification(
            valid=not problems,
            entries=done + result.entries,
            head_hash=result.head_hash,
            first_bad_seq=bad[0][0] if bad else None,
            reason="; ".join(problems) or None,
            checkpoint_seq=result.checkpoint_seq
            or (since.newest_anchor.seq if since and since.newest_anchor else None),
            # NOTE: without checkpoints nothing is signed: the tail says nothing.
            unsigned_entries=tail.entries if self.checkpoints is not None else 0,
            unsigned_since=tail.first_time if self.checkpoints is not None else None,
            reanchored_at=read.reanchored,
            incremental=since is not None,
        )
        if not verification.valid:
            return verification, None
        head_seq = done + result.entries
        progress = Progress(
            head_seq, result.head_hash, read.offset, read.line, read.last, read.lines,
            read.newest, read.reanchored, state, inferences,
        )  # fmt: skip
        return verification, progress

    async def _unchanged(self, since: Progress) -> bool:
        if since.seq and (await self.store.hashes_at([since.seq])).get(since.seq) != (
            since.entry_hash
        ):
            return False
        if since.offset and self.checkpoints is not None:
            line = await asyncio.to_thread(self.checkpoints.line_ending_at, since.offset)
            return line == since.line
        return True

    async def _read_checkpoints(self, since: Progress | None) -> _Checkpoints:
        if self.checkpoints is None:
            return _Checkpoints([], 0, None, None, 0, None, ())
        if self.verifier is None:
            raise ValueError("checkpoints need a verifier")
        offset = since.offset if since is not None else 0
        # Read before the chain: every checkpoint read refers to committed rows.
        lines, end = await asyncio.to_thread(self.checkpoints.read_from, offset)
        if since is None:
            checked = self.verifier.check_log(lines)
            reanchored = tuple(checked.reanchors)
        else:
            checked = self.verifier.check_log(
                lines, since.last_checkpoint, since.lines, since.newest_anchor
            )
            reanchored = since.reanchored + tuple(checked.reanchors)
        newest = checked.anchors[-1] if checked.anchors else None
        last = checked.newest
        if since is not None:
            newest = newest or since.newest_anchor
            last = last or since.last_checkpoint
        line = await asyncio.to_thread(self.checkpoints.line_ending_at, end) if end else None
        return _Checkpoints(checked.anchors, end, line, last, checked.lines, newest, reanchored)

    async def _old_tail(self, signed_seq: int, done: int) -> UnsignedTail:
        """The unsigned entries among those already verified (a short, bounded run)."""
        tail = UnsignedTail()
        if signed_seq >= done:
            return tail
        async for page in self.store.entries_from(signed_seq + 1, self.page_size):
            for entry in page:
                if entry.seq > done:
                    return tail
                tail = tail.add(entry.timestamp)
        return tail

    async def _table_problems(self, state: TrailState, inferences: int) -> list[str]:
        versions, routes = await self.store.tables()
        results = await self.store.result_count()
        problems = [disagreement(state, versions, routes)]
        if results != inferences:
            problems.append(
                f"{results} result rows but {inferences} inference entries: a result was"
                " stored without its audit entry"
            )
        return [problem for problem in problems if problem is not None]


async def verify(
    store: AuditStore,
    checkpoints: CheckpointCopies | CheckpointLog | None = None,
    verifier: CheckpointVerifier | None = None,
    page_size: int = 1000,
    limits: TailLimits | None = None,
) -> Verification:
    """One full verification of ``store`` (against ``checkpoints`` when given)."""
    if isinstance(checkpoints, CheckpointLog):
        checkpoints = CheckpointCopies(checkpoints)
    trail = TrailVerifier(store, checkpoints, verifier, limits, store.clock, page_size)
    return (await trail.verify())[0]
