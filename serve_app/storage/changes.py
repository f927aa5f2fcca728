"""Model versions and routes changed in the transaction of the audit entry that records
the change (``AuditStore.append``)."""

from __future__ import annotations

from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from serve_app.errors import NotFound
from serve_app.records.model import ModelChange, ModelVersionRecord
from serve_app.records.route import RouteChange
from serve_app.storage.models import ModelVersion, Route


async def apply_model_change(change: ModelChange, tx: BaseDBAsyncClient) -> None:
    """Insert a registered version's row, or move a version to its new status."""
    if isinstance(change, ModelVersionRecord):
        await ModelVersion.create(**vars(change), using_db=tx)
        return
    updated = await (
        ModelVersion.filter(model_name=change.model_name, version=change.version)
        .using_db(tx)
        .update(status=change.status)
    )
    if updated != 1:
        raise NotFound(
            f"model {change.model_name}:{change.version} is not registered",
            field="model",
            rule="registered",
        )


async def apply_route_change(
    change: RouteChange, actor: str, now: datetime, tx: BaseDBAsyncClient
) -> None:
    """Set an endpoint's route, by ``actor`` at ``now``, or remove it."""
    if change.config is None:
        await Route.filter(endpoint=change.endpoint).using_db(tx).delete()
        return
    await Route.update_or_create(
        {"config": dict(change.config), "updated_by": actor, "updated_at": now},
        endpoint=change.endpoint,
        using_db=tx,
    )
