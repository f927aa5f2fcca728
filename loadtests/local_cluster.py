"""A multi-node Ray cluster on this machine, grouped as the KubeRay manifest groups it
(k8s/README.md): a head holding the ingress, audit and registry groups, and worker nodes
of the untrusted group, each its own raylet started by ``ray start --block`` in a process
session of its own, so that killing the session is losing the node. As in the manifest,
Ray Serve runs in its high-throughput mode, Ray's token authentication and TLS (mutual,
one self-signed certificate as the cluster's CA) are on between every node and the
driver, and the worker nodes get none of the application's secrets.

For the multi-node tests (tests/crash/test_multi_node.py), watching autoscaling across
nodes (``python -m loadtests.autoscale --multi-node``) and measuring TLS
(``python -m loadtests.cluster_bench``). A production cluster is KubeRay's:
k8s/rayservice.yaml.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from loadtests.ports import free_port
from loadtests.sessions import kill_session, session_processes
from serve_app.auth.credentials import Credentials
from serve_app.settings import REPO_ROOT

RAY = str(Path(sys.executable).parent / "ray")
HEAD_GROUPS = {"medai_ingress": 1, "medai_audit": 1, "medai_registry": 1}
WORKER_GROUP = {"medai_untrusted": 1000}
APP_SECRETS = frozenset(f"MEDAI_{name.upper()}" for name in Credentials.model_fields)
TLS_FILES = {"RAY_TLS_SERVER_CERT": "ray.crt", "RAY_TLS_SERVER_KEY": "ray.key"}


@dataclass
class Node:
    """One ``ray start --block`` and every process its raylet starts (one session)."""

    name: str
    process: subprocess.Popen[bytes]

    def processes(self) -> list[psutil.Process]:
        return session_processes(self.process.pid)

    def kill(self) -> None:
        kill_session(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class LocalCluster:
    address: str
    temp_dir: Path
    logs: Path
    env: dict[str, str]
    """Every node's environment (Ray's token and TLS files); workers' without secrets."""
    nodes: dict[str, Node] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(
                [RAY, "start", "--block", "--disable-usage-stats", *args],
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.nodes[name] = Node(name, process)

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


def write_tls_files(directory: Path) -> dict[str, str]:
    """A self-signed certificate and its key, the certificate also the CA every node
    checks its peers against (Ray's own test setup does the same): Ray's TLS variables."""
    from ray._common.tls_utils import generate_self_signed_tls_certs

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = generate_self_signed_tls_certs()
    (directory / "ray.crt").write_text(cert)
    (directory / "ray.key").touch(mode=0o600)
    (directory / "ray.key").write_text(key)
    return {
        "RAY_USE_TLS": "1",
        "RAY_TLS_SERVER_CERT": str(directory / "ray.crt"),
        "RAY_TLS_SERVER_KEY": str(directory / "ray.key"),
        "RAY_TLS_CA_CERT": str(directory / "ray.crt"),
    }


@contextlib.contextmanager
def local_cluster(
    logs: Path,
    workers: int = 2,
    worker_cpus: int = 2,
    tls: bool = True,
    high_throughput: bool = True,
) -> Iterator[LocalCluster]:
    """Start the head and ``workers`` worker nodes (one at a time: two raylets starting
    at once on one host timed out), connect this process as the driver, and take it all
    down after. ``worker_cpus``: each worker's logical CPUs, enough for one worker to hold
    every model replica once the other is gone. ``high_throughput``: Ray Serve's HAProxy
    and throughput-optimized mode, as the manifest runs it (``medai serve``'s
    environment), its HAProxy in a directory of its own, stopped after."""
    import ray

    from medai_cli.main import haproxy_dir, serve_env, stop_haproxy

    # NOTE: short: Ray puts sockets below it, and a Unix socket path is at most 107 bytes.
    temp_dir = Path(f"/tmp/mn-{os.getpid()}")
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    haproxy = haproxy_dir() if high_throughput else None
    ray_env = serve_env(high_throughput, haproxy)
    ray_env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    if tls:
        ray_env |= write_tls_files(temp_dir / "tls")
    cluster = LocalCluster(f"127.0.0.1:{port}", temp_dir, logs, os.environ | ray_env)
    saved = {name: os.environ.get(name) for name in ray_env}
    os.environ |= ray_env
    refresh_ray_config()
    common = ["--temp-dir", str(temp_dir), "--node-ip-address", "127.0.0.1"]
    try:
        head = ["--head", "--port", str(port), "--include-dashboard", "false"]
        groups = ["--resources", json.dumps(HEAD_GROUPS), "--num-cpus", "1"]
        cluster.start("head", [*head, *groups, *common], cluster.env)
        wait_for(lambda: listening(port), 120, f"the head's GCS listening; see {logs}")
        ray.init(address=cluster.address, namespace="serve", log_to_driver=False)
        untrusted = {k: v for k, v in cluster.env.items() if k not in APP_SECRETS}
        for joined, name in enumerate((f"worker-{i + 1}" for i in range(workers)), start=2):
            # NOTE: its own node manager port, by which ray.nodes() names this node
            join = ["--address", cluster.address, "--node-manager-port", str(free_port())]
            groups = ["--resources", json.dumps(WORKER_GROUP), "--num-cpus", str(worker_cpus)]
            cluster.start(name, [*join, *groups, *common], untrusted)
            wait_for(functools.partial(has_nodes, joined), 180, f"{name} joining; see {logs}")
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        for node in cluster.nodes.values():
            node.kill()
        if haproxy:  # Ray leaves it running, outside the head's session
            stop_haproxy(haproxy)
        for directory in (temp_dir, haproxy):
            if directory:
                shutil.rmtree(directory, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        refresh_ray_config()


def refresh_ray_config() -> None:
    """Ray caches its configuration when first imported (pytest imports it while
    collecting the served modules, before any cluster starts) and the token when first
    loaded (a second cluster in one process has a token of its own): this rereads both
    from the environment, as Ray itself does when it turns token authentication on or
    makes a token."""
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]  # Ray's stub of the extension omits them

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def manifest_serve_config(port: int, args: dict[str, Any]) -> dict[str, Any]:
    """The KubeRay manifest's serve config on loopback, with one proxy (one host: every
    node's proxy would want the same port) and ``args`` over its application's."""
    (service,) = [
        d
        for d in yaml.safe_load_all((REPO_ROOT / "k8s" / "rayservice.yaml").read_text())
        if d and d["kind"] == "RayService"
    ]
    config: dict[str, Any] = yaml.safe_load(service["spec"]["serveConfigV2"])
    config["http_options"] |= {"host": "127.0.0.1", "port": port}
    config["proxy_location"] = "HeadOnly"
    for app in config["applications"]:
        app["args"] = {**app.get("args", {}), **args}
    return config


def deploy_manifest(args: dict[str, Any]) -> str:
    """Deploy the manifest's serve config (``args`` over its application's) on the cluster
    this process is joined to; its base URL once ``/readyz`` answers 200."""
    from ray.serve.schema import ServeDeploySchema

    from deployments.local import deploy

    config = ServeDeploySchema.model_validate(manifest_serve_config(free_port(), args))
    return deploy(config, ready_timeout_s=300)


def this_machines_app_args() -> dict[str, str]:
    """The application ``args`` of a load run: this machine's model store (its demo models
    built if missing) and data directory, whose development secrets sign the runner's
    tokens, as ``medai serve`` runs them."""
    from medai_cli.common import config_settings
    from medai_cli.main import build_demo_models

    settings = config_settings(REPO_ROOT / "serve_config.yaml")
    build_demo_models(settings)
    return {"model_store": str(settings.model_store), "data_dir": str(settings.data_dir)}


def replica_nodes(app: str = "medai") -> dict[str, set[str]]:
    """Each deployment's live replicas' node ids (from the GCS's actor table)."""
    import ray

    placed: dict[str, set[str]] = collections.defaultdict(set)
    for actor in ray._private.state.actors().values():
        name = actor.get("ActorClassName", "")
        if name.startswith(f"ServeReplica:{app}:") and actor["State"] == "ALIVE":
            placed[name.rpartition(":")[2]].add(actor["Address"]["NodeID"])
    return placed


def has_nodes(count: int) -> bool:
    import ray

    return len([node for node in ray.nodes() if node["Alive"]]) >= count


def node_groups() -> dict[str, str]:
    """Each live node's group by id: ``head``, or ``worker`` (the untrusted group)."""
    import ray

    return {
        node["NodeID"]: "head" if "medai_ingress" in node["Resources"] else "worker"
        for node in ray.nodes()
        if node["Alive"]
    }


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s}s")
        time.sleep(1)
