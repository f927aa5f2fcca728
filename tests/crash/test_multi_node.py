"""A real multi-node Ray cluster on this machine: a head and two worker nodes, each its
own raylet, the app deployed with the KubeRay manifest's serve config (each deployment
pinned to its node group by a custom resource, k8s/README.md).

Checked: Ray's own traffic between the nodes is TLS with client certificates (and its
token authentication on, as the manifest runs it); replicas land where their resources
say; the worker nodes, which parse untrusted files, run without any of the application's
secrets; the audit writer on the head holds
the single-writer lease on PostgreSQL; killing the raylet of the worker that runs the
model replica mid-load loses no acknowledged inference, the replicas come back on the
surviving worker, and the chain verifies.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from loadtests.local_cluster import (
    APP_SECRETS,
    LocalCluster,
    deploy_manifest,
    local_cluster,
    node_groups,
    replica_nodes,
    wait_for,
)
from tests.conftest import TEST_AUTH, TokenFactory
from tests.crash.kept import assert_kept
from tests.images import infer_body, pixels
from tests.postgres import fresh_schema

pytestmark = [pytest.mark.crash, pytest.mark.timeout(600)]

SECRETS = sorted(APP_SECRETS)
CLIENTS = 6
ACKNOWLEDGED_BEFORE_KILL = 60
ACKNOWLEDGED_AFTER_KILL = 30


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("cluster"), workers=2, worker_cpus=2) as cluster:
        yield cluster


def tls_handshake(port: int, env: dict[str, str], client_certificate: bool) -> bool:
    """Whether a TLS handshake with ``127.0.0.1:port`` completes, trusting the cluster's
    CA, with or without the cluster's certificate as this client's."""
    context = ssl.create_default_context(cafile=env["RAY_TLS_CA_CERT"])
    context.check_hostname = False  # Ray's certificate names the host, not 127.0.0.1
    if client_certificate:
        context.load_cert_chain(env["RAY_TLS_SERVER_CERT"], env["RAY_TLS_SERVER_KEY"])
    context.set_alpn_protocols(["h2"])
    try:
        raw = socket.create_connection(("127.0.0.1", port), 5)
        with raw, context.wrap_socket(raw) as tls:
            # TLS 1.3 reports a refused client certificate after the handshake
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            tls.settimeout(5)
            return bool(tls.recv(1))
    except (ssl.SSLError, OSError):
        return False


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
    cluster: LocalCluster,
    tmp_path: Path,
    model_store: Path,
    token_for: TokenFactory,
) -> None:
    with fresh_schema() as database_url:  # the cluster's database: PostgreSQL
        run_the_loss(cluster, tmp_path, database_url, model_store, token_for)


def run_the_loss(
    cluster: LocalCluster,
    tmp_path: Path,
    database_url: str,
    model_store: Path,
    token_for: TokenFactory,
) -> None:
    args = {
        "model_store": str(model_store),
        "data_dir": str(tmp_path / "data"),
        "auth": TEST_AUTH,
        "storage": {"database_url": database_url},
    }
    base_url = deploy_manifest(args)

    gcs_port = int(cluster.address.rpartition(":")[2])
    assert tls_handshake(gcs_port, cluster.env, client_certificate=True)
    assert not tls_handshake(gcs_port, cluster.env, client_certificate=False)

    nodes = node_groups()
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
        assert_kept(client, answered)
        verification = client.get("/audit/verify").json()
    assert verification["valid"], verification
    print(
        f"multi-node: {len(answered)} acknowledged ({len(after)} after the worker died, "
        f"first {min(after) - killed_at:.1f} s after); refused during the loss "
        f"{dict(load.refused)}; all audited and stored; chain of "
        f"{verification['entries']} entries verifies"
    )
