"""What a running single-host server listens on, and where (README "Network exposure").

The server's own ports (the HTTP front, each replica's HTTP port behind HAProxy) answer
on loopback only. Wildcard listeners are allowed only where Ray 2.60 hardcodes them:
the GCS's, the raylet's and each worker's gRPC servers (with Ray's token authentication
and mutual TLS, which a cluster turns on, k8s/README.md), Serve's inter-deployment gRPC
server (one more per replica), and HAProxy's stats and Prometheus ports. Anything else
listening on every interface, or on an outside address, fails.
"""

from __future__ import annotations

import collections
import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil
import pytest

pytestmark = [pytest.mark.serve, pytest.mark.timeout(120)]

WILDCARD = {"0.0.0.0", "::"}
HAPROXY_OPEN_PORTS = {8404, 9101}
"""Ray's HAProxy template binds its stats page and Prometheus endpoint on ``*``."""
RAY_CORE = ("gcs_server", "raylet")
"""Ray's own servers, bound on every interface by Ray 2.60 (GCS, raylet, object manager)."""
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "dashboard/agent.py")
"""Ray's per-node agents: their gRPC and HTTP ports are on the node's address."""


@dataclass(frozen=True)
class Listener:
    ip: str
    port: int
    pid: int
    role: str


def role_of(process: psutil.Process) -> str:
    """``gcs_server``, ``raylet``, ``haproxy``, ``ray::ServeReplica:medai:Ingress``, ..."""
    command = process.cmdline()
    first = command[0] if command else process.name()
    if first.startswith("ray::"):
        return first.split()[0]
    name = os.path.basename(first)
    if name.startswith("python"):
        return " ".join(os.path.basename(part) for part in command[:3])
    return name


def listeners() -> list[Listener]:
    """Every listening TCP socket of this test session's processes (Ray started here)."""
    me = psutil.Process()
    tree = {p.pid: p for p in [me, *me.children(recursive=True)]}
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in tree:
            try:
                role = role_of(tree[conn.pid])
            except psutil.Error:
                continue  # gone meanwhile
            found.append(Listener(conn.laddr.ip, conn.laddr.port, conn.pid, role))
    return found


def is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


def test_the_servers_own_ports_answer_on_loopback_only(served: str) -> None:
    serving_port = urlsplit(served).port
    found = listeners()
    front = [entry for entry in found if entry.port == serving_port]
    assert front and all(is_loopback(entry.ip) for entry in front), front
    # every replica's own HTTP port (HAProxy's backends in the high-throughput mode)
    for entry in found:
        if entry.role.startswith("ray::ServeReplica") and entry.ip not in WILDCARD:
            assert is_loopback(entry.ip), entry


def test_nothing_else_listens_on_every_interface(served: str) -> None:
    found = listeners()
    wildcard_per_process: collections.Counter[int] = collections.Counter()
    unexpected = []
    for entry in found:
        if entry.ip not in WILDCARD:
            if not is_loopback(entry.ip) and not entry.role.startswith(RAY_AGENTS):
                unexpected.append(entry)  # an outside address: only Ray's node agents
            continue
        if entry.role == "haproxy":
            if entry.port not in HAPROXY_OPEN_PORTS:
                unexpected.append(entry)
        elif entry.role in RAY_CORE or entry.role.startswith(RAY_AGENTS):
            pass
        else:
            wildcard_per_process[entry.pid] += 1
    # a worker (and this driver): its core worker's gRPC server; a replica also Serve's
    # inter-deployment gRPC server; nothing of our own
    roles = {entry.pid: entry.role for entry in found}
    crowded = {
        pid: n
        for pid, n in wildcard_per_process.items()
        if n > (2 if roles[pid].startswith("ray::ServeReplica") else 1)
    }
    assert not unexpected, unexpected
    assert not crowded, [e for e in found if e.pid in crowded]
    assert wildcard_per_process, "no Ray worker listener seen: the probe is broken"
