"""The real AuditWriter replica killed in a served app.

Under load, every /infer/file is answered 503 (a write in flight on the dead replica: its
outcome is unknown) or 200 with its record stored (a write Serve held for the replica it
starts instead, or re-sent to it: stored once), never a result without its record, a
409 or a hang; Serve replaces the replica and the chain verifies. On PostgreSQL (the
high-throughput pass) the kill is made to land inside a write: the chain's table is
locked until the write waits on it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
import ray
from ray import serve
from ray.exceptions import RayActorError
from ray.serve._private.common import REPLICA_ID_FULL_ID_STR_PREFIX
from ray.serve._private.constants import SERVE_NAMESPACE

from serve_app.audit.events import AuditEvent
from tests.conftest import HIGH_THROUGHPUT, TokenFactory
from tests.images import encode, pixels
from tests.problems import assert_problem
from tests.storage.audit_builders import record
from tests.storage.test_group_commit import hold_the_chain

pytestmark = [pytest.mark.serve, pytest.mark.timeout(300)]

WRITER = f"{REPLICA_ID_FULL_ID_STR_PREFIX}medai#AuditWriter#"
CLIENTS = 8


def writer_replicas() -> set[str]:
    return {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(WRITER)
    }


def kill(name: str) -> None:
    """Kill the replica's actor and return once it is dead."""
    actor = ray.get_actor(name, namespace=SERVE_NAMESPACE)
    ray.kill(actor, no_restart=True)
    with pytest.raises(RayActorError):
        ray.get(actor.__ray_ready__.remote(), timeout=60)


@dataclass
class Client:
    """Posts /infer/file until answered 200 by a request sent after the kill."""

    index: int
    answers: list[tuple[bool, httpx.Response]] = field(default_factory=list)
    error: BaseException | None = None

    def run(self, base_url: str, headers: dict[str, str], killed: threading.Event) -> None:
        upload = {"file": ("scan.png", encode(pixels(7000 + self.index, 64, 64), "PNG"))}
        try:
            with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
                while True:
                    after_kill = killed.is_set()
                    response = client.post("/infer/file", files=upload)
                    self.answers.append((after_kill, response))
                    if after_kill and response.status_code == 200:
                        return
        # NOTE: whatever ends a client (a timeout: a hang) is kept for the test to report.
        except BaseException as error:
            self.error = error


def test_a_killed_audit_writer_never_answers_without_a_record_and_is_replaced(
    served: str, clinician: dict[str, str], token_for: TokenFactory
) -> None:
    (replica,) = writer_replicas()
    killed = threading.Event()
    clients = [Client(i) for i in range(CLIENTS)]
    threads = [threading.Thread(target=c.run, args=(served, clinician, killed)) for c in clients]
    for thread in threads:
        thread.start()
    try:
        # NOTE: every client busy first, so that writes are in flight when the replica dies.
        deadline = time.monotonic() + 120
        while not all(c.answers or c.error for c in clients) and time.monotonic() < deadline:
            time.sleep(0.1)
        kill(replica)
    finally:
        killed.set()
        for thread in threads:
            thread.join(timeout=240)
    assert not [t for t in threads if t.is_alive()], "clients still waiting: a hang"
    assert {c.index: repr(c.error) for c in clients if c.error} == {}

    answers = [response for c in clients for _, response in c.answers]
    assert {r.status_code for r in answers} <= {200, 503}, [r.text for r in answers]
    for refused in (r for r in answers if r.status_code == 503):
        # NOTE: a write in flight is "outcome unknown", naming its inference id to look up.
        assert refused.headers["content-type"] == "application/problem+json"
        assert "outputs" not in refused.text
    auditor = {"Authorization": f"Bearer {token_for('auditor')}"}
    with httpx.Client(base_url=served, headers=auditor, timeout=60) as client:
        for answered in (r for r in answers if r.status_code == 200):
            stored = client.get(f"/results/{answered.json()['inference_id']}")
            assert stored.status_code == 200, stored.text
        verification = client.get("/audit/verify")
    assert verification.status_code == 200 and verification.json()["valid"], verification.text
    assert writer_replicas() - {replica}, "Serve did not start another writer"
    print(
        f"{sum(r.status_code == 503 for r in answers)} answers 503, "
        f"{sum(r.status_code == 200 for r in answers)} answers 200, all stored"
    )


def test_a_message_the_writer_gets_twice_is_stored_once_and_answered_stored_twice(
    served: str, token_for: TokenFactory
) -> None:
    """What Ray's router does when the writer dies before acknowledging a message it had
    committed: the same message again, to the replica Serve starts instead."""
    actor = f"redelivery-{uuid4().hex[:12]}"
    result = record(0, inference_id=f"inf-{actor}", requested_by=actor)
    message = [[AuditEvent.inference(result)]]

    async def deliver_twice() -> list[Any]:
        # NOTE: made inside a loop: the high-throughput mode's handles route on the caller's.
        writer = serve.get_deployment_handle("AuditWriter", app_name="medai")
        return [await writer.record_each.remote(message) for _ in range(2)]

    assert asyncio.run(asyncio.wait_for(deliver_twice(), 60)) == [[None], [None]]
    auditor = {"Authorization": f"Bearer {token_for('auditor')}"}
    with httpx.Client(base_url=served, headers=auditor, timeout=60) as client:
        assert client.get(f"/results/{result.inference_id}").status_code == 200
        entries = client.get("/audit", params={"actor": actor}).json()["entries"]
    assert [e["object_id"] for e in entries] == [result.inference_id]


def test_a_writer_killed_inside_its_write_is_a_503_and_nothing_is_stored(
    served: str, clinician: dict[str, str], served_storage: dict[str, Any], token_for: TokenFactory
) -> None:
    if not HIGH_THROUGHPUT:
        pytest.skip("the served app is on PostgreSQL in the high-throughput pass only")
    url = served_storage["storage"]["database_url"]
    upload = {"file": ("scan.png", encode(pixels(7100, 64, 64), "PNG"))}
    with httpx.Client(base_url=served, headers=clinician, timeout=120) as client:
        assert client.post("/infer/file", files=upload).status_code == 200
    (replica,) = writer_replicas()

    async def scenario() -> httpx.Response:
        release = await hold_the_chain(url)
        try:
            async with httpx.AsyncClient(base_url=served, headers=clinician, timeout=120) as c:
                write = asyncio.create_task(c.post("/infer/file", files=upload))
                await wait_for_a_write_on_the_chain(url)
                await asyncio.to_thread(kill, replica)
                return await write
        finally:
            await release()

    refused = asyncio.run(scenario())
    assert_problem(refused, 503, "inference_id", "outcome-unknown")
    assert "outputs" not in refused.text
    inference_id = refused.json()["errors"][0]["message"]
    auditor = {"Authorization": f"Bearer {token_for('auditor')}"}
    with httpx.Client(base_url=served, headers=auditor, timeout=120) as client:
        retried = client.post("/infer/file", files=upload, headers=clinician)
        assert retried.status_code == 200, retried.text
        assert client.get(f"/results/{inference_id}").status_code == 404
        verification = client.get("/audit/verify")
    assert verification.status_code == 200 and verification.json()["valid"], verification.text


async def wait_for_a_write_on_the_chain(database_url: str, within_s: float = 60) -> None:
    url, _, schema = database_url.partition("?schema=")
    connection = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + within_s
        sql = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass"
        while not await connection.fetchval(sql, f'"{schema}"."audit_log"'):
            assert time.monotonic() < deadline, f"no write waited on the chain in {within_s}s"
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
