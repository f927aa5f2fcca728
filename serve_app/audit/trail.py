"""What the HTTP layer needs from the audit trail, and the trail of a server without one.

``record`` returns only once the events (and their results) are durable: a route
answers 200 after it. There is one implementation, ``DatabaseTrail``: the Ray app's
trail is the audit-writer deployment (``deployments/audit_writer.py``) made of it, and
the in-process app holds one on a database of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from serve_app.audit.events import AuditEvent
from serve_app.errors import ServiceUnavailable
from serve_app.schemas.audit import AuditRecord, ChainVerification, StoredResult
from serve_app.schemas.models import ModelVersionOut
from serve_app.schemas.routes import RouteOut, RouteStats


class AuditTrail(Protocol):
    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Commit ``events`` and their results; raise ``ServiceUnavailable`` if it cannot."""
        ...

    async def result(self, inference_id: str) -> StoredResult | None: ...

    async def results_by(self, subject: str, limit: int) -> list[StoredResult]:
        """The newest ``limit`` results ``subject`` asked for, newest first."""
        ...

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        """Entries with seq > ``after_seq``, oldest first, at most ``limit``."""
        ...

    async def verify(self, full: bool = False) -> ChainVerification:
        """The trail checked from the last verification on, or from the start if ``full``."""
        ...

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        """Registered model versions, oldest first; only ``name``'s when given."""
        ...

    async def routes(self) -> list[RouteOut]:
        """Every endpoint's route, by endpoint."""
        ...

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        """Per-arm statistics over ``endpoint``'s newest ``limit`` results (since ``since``)."""
        ...


class DisabledTrail:
    """No persistence (``audit.enabled: false``, benchmarks only): nothing is kept."""

    async def record(self, events: Sequence[AuditEvent]) -> None:
        return None

    async def result(self, inference_id: str) -> StoredResult | None:
        raise ServiceUnavailable("results are not stored: audit.enabled is false")

    async def results_by(self, subject: str, limit: int) -> list[StoredResult]:
        raise ServiceUnavailable("results are not stored: audit.enabled is false")

    async def entries(self, after_seq: int, limit: int) -> list[AuditRecord]:
        raise ServiceUnavailable("the audit trail is off: audit.enabled is false")

    async def verify(self, full: bool = False) -> ChainVerification:
        raise ServiceUnavailable("the audit trail is off: audit.enabled is false")

    async def model_versions(self, name: str | None = None) -> list[ModelVersionOut]:
        raise ServiceUnavailable("the registry's records are off: audit.enabled is false")

    async def routes(self) -> list[RouteOut]:
        raise ServiceUnavailable("routes are not kept: audit.enabled is false")

    async def route_stats(
        self, endpoint: str, limit: int, since: datetime | None = None
    ) -> RouteStats:
        raise ServiceUnavailable("results are not stored: audit.enabled is false")
