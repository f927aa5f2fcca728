"""Routes and routed results in the database (SQLite and PostgreSQL): routes committed
with their audit entries, routing fields held by the result digest, schema 1 migrated."""

from __future__ import annotations

from typing import Any

import pytest
from tortoise.exceptions import IntegrityError

from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.store import OPTIONAL_RESULT_FIELDS, RESULT_DIGEST, AuditStore
from serve_app.audit.verification import verify
from serve_app.records.route import RouteChange
from serve_app.settings import Settings
from serve_app.storage import Database
from serve_app.storage.models import SCHEMA_VERSION, InferenceResult
from tests.storage.audit_builders import clock, event, inference, record, sql
from tests.storage.test_database import reopen, versions

CONFIG = {"arms": [{"model": "chest:1", "weight": 1.0}], "shadow": [], "sticky_key": None}


def route_event(actor: str, endpoint: str, config: dict[str, Any] | None) -> AuditEvent:
    return AuditEvent(
        actor=actor,
        action=AuditAction.ROUTE_CHANGE,
        object_type="route",
        object_id=endpoint,
        details=config or {"deleted": True},
        route=RouteChange(endpoint, config),
    )


def routed(i: int, **routing: Any) -> AuditEvent:
    result = record(i, endpoint="chest-ab", arm="chest:2", positive=True, **routing)
    return AuditEvent.inference(result)


def test_a_route_is_set_replaced_and_deleted_with_its_audit_entries(with_db: Any) -> None:
    async def scenario(db: Database) -> list[Any]:
        store = AuditStore(db, clock())
        seen = []
        await store.append([route_event("eng-1", "chest-ab", CONFIG)])
        seen.append([(r.endpoint, r.config, r.updated_by) for r in await store.routes()])
        other = {**CONFIG, "sticky_key": "patient_id"}
        await store.append([route_event("eng-2", "chest-ab", other)])
        seen.append([(r.config["sticky_key"], r.updated_by) for r in await store.routes()])
        await store.append([route_event("eng-3", "chest-ab", None)])
        seen.append(await store.routes())
        seen.append([(e.action, e.object_id, e.actor) for e in await store.read()])
        seen.append((await verify(store)).valid)
        return seen

    first, second, deleted, entries, valid = with_db(scenario)
    assert first == [("chest-ab", CONFIG, "eng-1")]
    assert second == [("patient_id", "eng-2")]
    assert deleted == []
    assert entries == [("route.change", "chest-ab", f"eng-{i}") for i in (1, 2, 3)]
    assert valid


def test_routed_results_keep_their_routing_and_the_digest_holds_it(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[Any, ...]:
        store = AuditStore(db, clock())
        rows = await store.append([routed(1), routed(2, shadow_of="inf-1"), inference(3)])
        results = await store.routed_results("chest-ab", 10)
        before = await verify(store)
        await sql(db, "UPDATE inference_results SET arm = ? WHERE inference_id = ?",
                  "chest:1", "inf-2")  # fmt: skip
        return rows, results, before, await verify(store)

    rows, results, before, after = with_db(scenario)
    assert {(r.inference_id, r.arm, r.shadow_of, r.positive) for r in results} == {
        ("inf-1", "chest:2", None, True),
        ("inf-2", "chest:2", "inf-1", True),
    }
    assert rows[0].details["endpoint"] == "chest-ab" and rows[0].details["arm"] == "chest:2"
    assert rows[1].details["shadow_of"] == "inf-1"
    assert "endpoint" not in rows[2].details and RESULT_DIGEST in rows[2].details
    assert before.valid
    assert (after.valid, after.first_bad_seq) == (False, 2)


def test_a_schema_1_database_is_migrated_and_its_results_still_verify(
    with_db: Any, storage_settings: Settings
) -> None:
    async def make_schema_1(db: Database) -> None:
        await AuditStore(db, clock()).append([inference(1), event(2)])
        if db.dialect == "sqlite":  # SQLite drops no indexed column
            rows = await db.connection.execute_query_dict(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
                " AND tbl_name = 'inference_results' AND sql LIKE '%endpoint%'"
            )
            for row in rows:
                await sql(db, f'DROP INDEX "{row["name"]}"')
        for column in OPTIONAL_RESULT_FIELDS:  # every column schemas 2 and 3 added
            await sql(db, f'ALTER TABLE inference_results DROP COLUMN "{column}"')
        await sql(db, 'DROP INDEX "uid_audit_log_event_id"')  # schema 4's column and index
        await sql(db, 'ALTER TABLE audit_log DROP COLUMN "event_id"')
        await sql(db, 'DROP TABLE "routes"')
        await sql(db, "UPDATE schema_version SET version = 1")

    async def after_migration(db: Database) -> tuple[Any, ...]:
        store = AuditStore(db, clock())
        new = [routed(3), route_event("eng", "chest-ab", CONFIG)]
        await store.append(new)
        with pytest.raises(IntegrityError):  # schema 4's key, unique on a migrated table too
            await store.append(new[1:])  # a route change: nothing else in it is unique
        old = await InferenceResult.get(inference_id="inf-1")
        old_fields = (old.endpoint, old.findings, old.source)
        keys = [entry.event_id for entry in await store.read()]
        assert keys == [None, None, *(e.event_id for e in new)]
        return await versions(db), old_fields, await verify(store), len(await store.routes())

    with_db(make_schema_1)
    applied, old_fields, verification, routes = reopen(storage_settings, after_migration)
    assert applied == [1, 2, 3, SCHEMA_VERSION] == [1, 2, 3, 4]  # 4: events' delivery keys
    assert old_fields == (None, None, None)
    assert verification.valid and verification.entries == 4
    assert routes == 1
