"""Group commit that fails a caller alone: many callers' events, one transaction.

A caller whose events break a rule (``bounds.refusal``) is answered with its own 422
before the transaction; the rest commit together. If the joint transaction still
fails for anything but an outage, each caller is committed apart, so whatever the
exception, only the caller that caused it fails. An outage (``ServiceUnavailable``)
fails the whole batch: nothing of it was stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from serve_app.audit.bounds import refusal
from serve_app.audit.events import AuditEvent
from serve_app.errors import MedAIError, RecordRefused, ServiceUnavailable

log = logging.getLogger(__name__)

Record = Callable[[Sequence[AuditEvent]], Awaitable[object]]


async def commit_each(
    record: Record, batches: Sequence[Sequence[AuditEvent]]
) -> list[MedAIError | None]:
    """Commit every caller's ``batches`` with one ``record`` call when possible.

    Returns one entry per caller: ``None`` once its events are committed, else the
    error that caller alone gets. Raises ``ServiceUnavailable`` when the store is down
    before anything of the batch was committed.
    """
    errors: list[MedAIError | None] = [refusal(batch) for batch in batches]
    clean = [i for i, error in enumerate(errors) if error is None]
    if not clean:
        return errors
    try:
        await record([event for i in clean for event in batches[i]])
        return errors
    except ServiceUnavailable:
        raise
    except Exception as error:
        # NOTE: one caller's change broke the transaction (a conflicting model version,
        # a value only the database refuses): commit each caller apart so that only
        # that caller fails. The type only: a message might quote a value.
        if len(clean) > 1:
            log.warning(
                "group commit failed; committing callers apart",
                extra={"error": type(error).__name__},
            )
        else:
            errors[clean[0]] = _as_error(error)
            return errors
    for i in clean:
        errors[i] = await _alone(record, batches[i])
    return errors


async def _alone(record: Record, batch: Sequence[AuditEvent]) -> MedAIError | None:
    try:
        await record(batch)
    except Exception as error:
        # NOTE: an outage now fails this caller and those after it, not those already
        # committed apart: their events are stored and they must be told so.
        return _as_error(error)
    return None


def _as_error(error: Exception) -> MedAIError:
    if isinstance(error, MedAIError):
        return error
    log.error("the audit store refused a caller's events", extra={"error": type(error).__name__})
    return RecordRefused(
        f"the audit store refused this request's record ({type(error).__name__}); "
        "nothing of it was stored"
    )
