"""How long the chain's newest entries may stay unsigned, as pure functions.

A running writer signs at least every ``checkpoint_every_entries`` entries and, while
entries arrive, every ``checkpoint_every_s`` seconds; a crash leaves at most about that
much unsigned. A longer unsigned tail means the checkpoints were lost, cut or rolled
back (or the writer stopped signing): a starting writer refuses to sign over it (a gap)
and verification fails once it is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from serve_app.settings import AuditSettings


@dataclass(frozen=True)
class TailLimits:
    max_entries: int
    max_age_s: float

    @classmethod
    def from_settings(cls, audit: AuditSettings) -> TailLimits:
        # NOTE: a batch may carry the count past checkpoint_every_entries before the
        # writer signs; the periodic signer may wake up to one period late.
        return cls(
            max_entries=audit.checkpoint_every_entries + audit.max_batch_events,
            max_age_s=2 * audit.checkpoint_every_s + audit.unsigned_grace_s,
        )


@dataclass(frozen=True)
class UnsignedTail:
    """The entries after the newest checkpoint."""

    entries: int = 0
    first_time: datetime | None = None
    last_time: datetime | None = None

    def add(self, time: datetime) -> UnsignedTail:
        return UnsignedTail(self.entries + 1, self.first_time or time, time)


def gap(tail: UnsignedTail, limits: TailLimits) -> str | None:
    """Why a writer must not sign ``tail`` as its own, or ``None``."""
    if tail.entries > limits.max_entries:
        return (
            f"{tail.entries} entries after the newest checkpoint are unsigned, more than a"
            f" writer leaves ({limits.max_entries}): checkpoints are missing"
        )
    if tail.first_time is not None and tail.last_time is not None:
        span = (tail.last_time - tail.first_time).total_seconds()
        if span > limits.max_age_s:
            return (
                f"the unsigned entries after the newest checkpoint span {span:.0f} s, longer"
                f" than a writer leaves unsigned ({limits.max_age_s:.0f} s): checkpoints"
                " are missing"
            )
    return None


def overdue(tail: UnsignedTail, limits: TailLimits, now: datetime) -> str | None:
    """Why verification must fail on ``tail`` at ``now``, or ``None``."""
    if (reason := gap(tail, limits)) is not None:
        return reason
    if tail.first_time is not None:
        age = (now - tail.first_time).total_seconds()
        if age > limits.max_age_s:
            return (
                f"checkpoint overdue: {tail.entries} entries have been unsigned for {age:.0f} s"
                f" (at most {limits.max_age_s:.0f} s); is the audit writer running?"
            )
    return None
