"""A real multi-node Ray cluster on this machine: a head and two worker nodes, each its
own raylet, the app deployed with the KubeRay manifest's serve config (each deployment
pinned to its node group by a custom resource, k8s/README.md).

Checked: replicas land where their resources say; the worker nodes, which parse untrusted
files, run without any of the application's secrets; the audit writer on the head holds
the single-writer lease on PostgreSQL; killing the raylet of the worker that runs the
model replica mid-load loses no acknowledged inference, the replicas come back on the
surviving worker, and the chain verifies.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from serve_app.settings import REPO_ROOT
from tests.conftest import TEST_AUTH, TokenFactory
from tests.images import infer_body, pixels
from tests.ports import free_port
from tests.postgres import fresh_schema
from tests.sessions import kill_session, session_processes

pytestmark = [pytest.mark.crash, pytest.mark.timeout(600)]

RAY = str(Path(sys.executable).parent / "ray")
SECRETS = ("MEDAI_JWT_SECRET", "MEDAI_PSEUDONYM_KEY", "MEDAI_AUDIT_SIGNING_KEY")
HEAD_GROUPS = {"medai_ingress": 1, "medai_audit": 1, "medai_registry": 1}
WORKER_GROUP = {"medai_untrusted": 1000}
CLIENTS = 6
ACKNOWLEDGED_BEFORE_KILL = 60
ACKNOWLEDGED_AFTER_KILL = 30


@dataclass
class Node:
    """One ``ray start --block`` in a process session of its own: the node's raylet and
    every worker process it starts share that session, so killing the session is
    killing the node."""

    name: str
    process: subprocess.Popen[bytes]

    def processes(self) -> list[psutil.Process]:
        return session_processes(self.process.pid)

    def kill(self) -> None:
        kill_session(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    nodes: dict[str, Node] = field(default_factory=dict)

    def node_of(self, node_id: str) -> Node:
        """The node whose raylet has this id (matched by its node manager port)."""
        import ray

        (port,) = [n["NodeManagerPort"] for n in ray.nodes() if n["NodeID"] == node_id]
        for node in self.nodes.values():
            for process in node.processes():
                with contextlib.suppress(psutil.Error):
                    if f"--node_manager_port={port}" in process.cmdline():
                        return node
        raise AssertionError(f"no node of ours runs the raylet {node_id}")

    def start(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            process = subprocess.Popen(
                [RAY, "start", "--block", "--disable-usage-stats", *args],
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.nodes[name] = Node(name, process)


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def without_secrets(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in SECRETS}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # NOTE: short: Ray puts sockets below it, and a Unix socket path is at most 107 bytes.
    temp_dir = Path(f"/tmp/mn-{os.getpid()}")
    logs = tmp_path_factory.mktemp("cluster")
    port = free_port()
    cluster = Cluster(f"127.0.0.1:{port}", temp_dir)
    # NOTE: Ray's token authentication, as the manifest runs it: a token of this cluster's
    # own for every node and this driver (Ray 2.60's `ray start` turns it on by default;
    # a driver sends it only when told to).
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    import ray
    from ray._private.authentication.authentication_token_setup import _enable_token_auth

    # NOTE: Ray caches its configuration when first imported, and pytest has imported it
    # already while collecting the Ray-served modules: this refreshes it from the
    # environment, as Ray itself does when it turns token authentication on.
    _enable_token_auth()

    common = ["--temp-dir", str(temp_dir), "--node-ip-address", "127.0.0.1"]
    try:
        head = ["--head", "--port", str(port), "--include-dashboard", "false"]
        resources = ["--resources", json.dumps(HEAD_GROUPS)]
        cpus = ["--num-cpus", "1"]
        cluster.start(
            "head", [*head, *resources, *cpus, *common], dict(os.environ), logs / "head.log"
        )
        wait_for(lambda: listening(port), 120, "the head's GCS listening")
        ray.init(address=cluster.address, namespace="serve", log_to_driver=False)
        for joined_nodes, worker in enumerate(("worker-a", "worker-b"), start=2):
            # NOTE: its own node manager port, by which ray.nodes() names this node
            joined = ["--address", cluster.address, "--node-manager-port", str(free_port())]
            # NOTE: logical CPUs: one worker must hold every model replica once the other
            # is gone (four at 0.25, the preprocessors at 0.1)
            cpus = ["--num-cpus", "2"]
            resources = ["--resources", json.dumps(WORKER_GROUP)]
            cluster.start(
                worker,
                [*joined, *resources, *cpus, *common],
                without_secrets(dict(os.environ)),
                logs / f"{worker}.log",
            )
            # NOTE: one at a time: two raylets starting at once on one host timed out
            wait_for(
                lambda n=joined_nodes: len([x for x in ray.nodes() if x["Alive"]]) >= n,
                180,
                f"{worker} joining; see {logs}",
            )
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        for node in cluster.nodes.values():
            node.kill()
        subprocess.run(["rm", "-rf", str(temp_dir)], check=False)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def manifest_serve_config(port: int, args: dict[str, Any]) -> dict[str, Any]:
    """The KubeRay manifest's serve config, on loopback, one proxy (one host)."""
    (service,) = [
        d
        for d in yaml.safe_load_all((REPO_ROOT / "k8s" / "rayservice.yaml").read_text())
        if d and d["kind"] == "RayService"
    ]
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    config["http_options"] |= {"host": "127.0.0.1", "port": port}
    config["proxy_location"] = "HeadOnly"  # one host: every node's proxy would share a port
    for app in config["applications"]:
        app["args"] = {**app.get("args", {}), **args}
    return config


def replica_nodes() -> dict[str, set[str]]:
    """Each deployment's live replicas' node ids (from the GCS's actor table)."""
    import ray

    placed: dict[str, set[str]] = collections.defaultdict(set)
    for actor in ray._private.state.actors().values():
        name = actor.get("ActorClassName", "")
        if name.startswith("ServeReplica:medai:") and actor["State"] == "ALIVE":
            placed[name.rpartition(":")[2]].add(actor["Address"]["NodeID"])
    return placed


def node_ids() -> dict[str, str]:
    """Node id by group: ``head``, or the raylet's resources naming a worker group."""
    import ray

    found = {}
    for node in ray.nodes():
        if node["Alive"]:
            found[node["NodeID"]] = "head" if "medai_ingress" in node["Resources"] else "worker"
    return found


def wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout_s}s"
        time.sleep(1)


@dataclass
class Load:
    acknowledged: list[tuple[float, str]] = field(default_factory=list)
    refused: collections.Counter[int] = field(default_factory=collections.Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self, base_url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
            seed = threading.get_ident() % 10_000 * 1000
            while not self.stop.is_set():
                seed += 1
                try:
                    response = client.post("/infer", json=infer_body(pixels(seed, 64, 64)))
                except httpx.HTTPError:
                    self.refused[0] += 1
                    continue
                if response.status_code == 200:
                    self.acknowledged.append((time.monotonic(), response.json()["inference_id"]))
                else:
                    self.refused[response.status_code] += 1


def test_a_worker_node_dies_under_load_and_nothing_acknowledged_is_lost(
    cluster: Cluster,
    tmp_path: Path,
    model_store: Path,
    token_for: TokenFactory,
) -> None:
    with fresh_schema() as database_url:  # the cluster's database: PostgreSQL
        run_the_loss(cluster, tmp_path, database_url, model_store, token_for)


def run_the_loss(
    cluster: Cluster, tmp_path: Path, database_url: str, model_store: Path, token_for: TokenFactory
) -> None:
    from deployments.local import deploy, load_config

    port = free_port()
    args = {
        "model_store": str(model_store),
        "data_dir": str(tmp_path / "data"),
        "auth": TEST_AUTH,
        "storage": {"database_url": database_url},
    }
    config_path = tmp_path / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(manifest_serve_config(port, args)))
    base_url = deploy(load_config(config_path), ready_timeout_s=300)

    nodes = node_ids()
    placed = replica_nodes()
    on = {name: {nodes[n] for n in ids} for name, ids in placed.items()}
    assert on["Ingress"] == on["AuditWriter"] == on["Registry"] == {"head"}, on
    assert on["Preprocessor"] == on["model-chest-xray-demo"] == {"worker"}, on
    # the nodes that parse untrusted files hold none of the application's secrets
    for name, node in cluster.nodes.items():
        if name != "head":
            for process in node.processes():
                with contextlib.suppress(psutil.Error):
                    assert not set(SECRETS) & set(process.environ()), process.cmdline()[:1]

    (model_node,) = placed["model-chest-xray-demo"]
    victim = cluster.node_of(model_node)
    assert victim.name != "head"

    load = Load()
    clients = [
        threading.Thread(target=load.client, args=(base_url, token_for("clinician")))
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: len(load.acknowledged) >= ACKNOWLEDGED_BEFORE_KILL, 120, "load answered")
        killed_at = time.monotonic()
        victim.kill()  # its raylet and every replica on it, mid-load
        wait_for(
            lambda: sum(t > killed_at for t, _ in load.acknowledged) >= ACKNOWLEDGED_AFTER_KILL,
            240,
            "answers again after the node died",
        )
    finally:
        load.stop.set()
        for client in clients:
            client.join(timeout=60)

    after = [t for t, _ in load.acknowledged if t > killed_at]
    survivors = {n for n in replica_nodes()["model-chest-xray-demo"]}
    assert survivors and model_node not in survivors, "the model replica did not move"

    answered = {i for _, i in load.acknowledged}
    auditor = {"Authorization": f"Bearer {token_for('auditor')}"}
    with httpx.Client(base_url=base_url, timeout=60, headers=auditor) as client:
        audited: set[str] = set()
        cursor: int | None = 0
        while cursor is not None:
            page = client.get("/audit", params={"after_seq": cursor, "limit": 1000}).json()
            audited |= {e["object_id"] for e in page["entries"] if e["action"] == "inference"}
            cursor = page["next_after_seq"]
        assert not answered - audited, f"{len(answered - audited)} acknowledged, not audited"
        missing = [i for i in answered if client.get(f"/results/{i}").status_code != 200]
        assert not missing, f"{len(missing)} acknowledged, not stored"
        verification = client.get("/audit/verify").json()
    assert verification["valid"], verification
    print(
        f"multi-node: {len(answered)} acknowledged ({len(after)} after the worker died, "
        f"first {min(after) - killed_at:.1f} s after); refused during the loss "
        f"{dict(load.refused)}; all audited and stored; chain of "
        f"{verification['entries']} entries verifies"
    )
