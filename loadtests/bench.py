"""Raw ONNX Runtime throughput beside served throughput, in one run.

    python -m loadtests.bench --model chest-xray-demo --servers naive,serve,serve-ht
    python -m loadtests.bench --model resnet50-bench --concurrency 1,8 --duration 20
    python -m loadtests.bench --servers serve-ht --route none,ab,shadow

For each server (``naive``: the same FastAPI app on one uvicorn process without
Ray; ``serve``: Ray Serve default mode; ``serve-ht``: Ray Serve HAProxy +
throughput-optimized mode) it starts the server in its own process tree,
drives it with ``wrk`` (C, one thread, so the load generator takes little
CPU), and prints req/s, p50/p99 and the ratio to raw ONNX Runtime, plus the
peak resident memory of the server's processes. ``--route`` also measures the
model's name routed A/B (half to a registered copy of the model) or with that copy
as a shadow, to show what routing and shadow copies cost the answers. Needs ``wrk``
(``apt-get install wrk``). A script, not a test: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import psutil
import yaml

from loadtests.payloads import BODIES, PATHS, image_for, v2_body
from medai_cli.common import local_token
from medai_cli.main import build_demo_models, haproxy_dir, serve_env, stop_haproxy
from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.store import ModelStore
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.demo_models import DEMO_MODELS
from serve_app.preprocessing import prepare
from serve_app.settings import REPO_ROOT, Settings

WRK_SCRIPT = """
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
{headers}
wrk.headers["Authorization"] = "Bearer {token}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {{"requests": %d, "duration_us": %d, "errors": %d, '
    .. '"non_2xx": %d, "p50_us": %d, "p99_us": %d}}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50),
    latency:percentile(99)))
end
"""

DEMO_VERSIONS = {demo.name: demo.version for demo in DEMO_MODELS}
BENCH_MODEL_CONFIG = {"max_batch_size": 8, "batch_wait_timeout_s": 0.0}
"""Settings for a benchmarked model that serve_config.yaml does not serve."""
BENCH_MODEL_DEPLOYMENT = {"max_ongoing_requests": 32, "ray_actor_options": {"num_cpus": 0.25}}


def raw_throughput(store: ModelStore, spec: ModelSpec, seconds: float) -> tuple[int, float]:
    """Best images/s of one in-process ONNX Runtime session over batch sizes."""
    session = ort.InferenceSession(store.read_verified(spec), providers=["CPUExecutionProvider"])
    one = prepare(DecodedImage(image_for(spec), ImageFormat.PIXELS), spec)
    best = (1, 0.0)
    for batch in (1, 2, 4, 8, 16, 32) if spec.dynamic_batch else (1,):
        tensor = np.repeat(one, batch, axis=0)
        session.run(None, {spec.input_name: tensor})
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            session.run(None, {spec.input_name: tensor})
            done += batch
        rate = done / (time.perf_counter() - started)
        print(f"  raw onnxruntime batch {batch:>2}: {rate:8.1f} img/s", flush=True)
        best = max(best, (batch, rate), key=lambda b: b[1])
    return best


@dataclass(frozen=True)
class Server:
    """One benchmarked server: its kind (``naive``, ``serve``, ``serve-ht``) and setup."""

    kind: str
    model: str
    port: int
    workdir: Path
    overrides: dict = field(default_factory=dict)
    """The model's settings over serve_config.yaml's (``--model-config``)."""
    storage: dict = field(default_factory=dict)
    """Application ``args`` for persistence (``storage_args``)."""
    preprocessors: int | None = None
    """That many Preprocessor replicas, fixed, instead of the configured autoscaling."""


def serve_config(server: Server) -> Path:
    """serve_config.yaml for one benchmarked Serve server."""
    model = server.model
    config = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    config["http_options"]["port"] = server.port
    app = config["applications"][0]
    app["args"] |= server.storage
    if not app["args"].get("audit", {}).get("enabled", True):
        app["deployments"] = [d for d in app["deployments"] if d["name"] != "AuditWriter"]
    if model not in [m["name"] for m in app["args"]["models"]]:
        app["args"]["models"].append({"name": model, **BENCH_MODEL_CONFIG})
        app["deployments"].append({"name": f"model-{model}", **BENCH_MODEL_DEPLOYMENT})
    for entry in app["args"]["models"]:
        if entry["name"] == model:
            entry |= server.overrides
    for deployment in app["deployments"]:
        if server.preprocessors and deployment["name"] == "Preprocessor":
            deployment.pop("autoscaling_config", None)
            deployment["num_replicas"] = server.preprocessors
    path = server.workdir / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def route_model(base_url: str, token: str, store: ModelStore, model: str, route: str) -> str:
    """Route ``model``'s name: ``ab`` half to a new copy of it, ``shadow`` copies to it."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        listed = client.get("/models", params={"name": model}).json()
        (serving,) = [v["version"] for v in listed if v["status"] == "production"]
        base = store.resolve(model, serving)
        copy = onnx.load_from_string(store.read_verified(base))
        version = f"bench-{uuid.uuid4().hex[:8]}"
        props = {p.key: p.value for p in copy.metadata_props} | {"medai.description": version}
        onnx.helper.set_model_props(copy, props)
        files = {"file": ("model.onnx", copy.SerializeToString())}
        client.post("/models", files=files, data={"name": model, "version": version})
        client.post(f"/models/{model}/{version}/promote", json={"to": "validation"})
        arms = [{"model": base.ref, "weight": 1}]
        body = {"arms": arms, "shadow": [f"{model}:{version}"]}
        if route == "ab":
            body = {"arms": [*arms, {"model": f"{model}:{version}", "weight": 1}]}
        client.put(f"/routes/{model}", json=body).raise_for_status()
    time.sleep(2)  # NOTE: the preprocessors follow the registry every second
    return f"{model}:{version}"


def route_summary(base_url: str, token: str, model: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    stats = httpx.get(f"{base_url}/routes/{model}/stats", headers=headers, timeout=60).json()
    counts = [f"{a['model']} {a['count']}" for a in stats["arms"]]
    counts += [f"shadow {a['model']} {a['count']}" for a in stats["shadows"]]
    return ", ".join(counts)


def storage_args(audit: bool, database_url: str | None) -> dict:
    """Application ``args`` for persistence on (to ``database_url``) or off."""
    if not audit:
        return {"audit": {"enabled": False}}
    return {"storage": {"database_url": database_url}} if database_url else {}


def request_body(endpoint: str, spec: ModelSpec, model: str) -> tuple[bytes, dict[str, str]]:
    """One image of the model's size as ``endpoint`` takes it, and the request's headers."""
    image = image_for(spec, seed=1)
    if endpoint == "v2":  # the tensor the preprocessor would make of that image
        tensor = prepare(DecodedImage(image, ImageFormat.PIXELS), spec)
        return v2_body(tensor, spec.input_name)
    body, content_type = BODIES[endpoint](image, model)
    return body, {"Content-Type": content_type}


HAPROXY_DIR = haproxy_dir()
"""Where this run's high-throughput servers keep HAProxy's files (``haproxy_env``); gone
when the process ends, whoever imported this module."""
atexit.register(shutil.rmtree, HAPROXY_DIR, ignore_errors=True)


def wrk_script(workdir: Path, endpoint: str, spec: ModelSpec, model: str, token: str) -> Path:
    """wrk's Lua script posting one image of the model's size as ``endpoint`` takes it."""
    body, headers = request_body(endpoint, spec, model)
    (workdir / "body").write_bytes(body)
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=workdir / "body", headers=lines, token=token))
    return script


def server_command(server: Server) -> tuple[list[str], dict[str, str]]:
    """The command (run in ``REPO_ROOT``) and environment of the server."""
    env = dict(os.environ)
    bin_dir = Path(sys.executable).parent
    storage, model = server.storage, server.model
    if server.kind == "naive":
        # NOTE: the naive peer stores and audits in the same database as Serve (none, audit off).
        env["MEDAI_AUDIT__ENABLED"] = json.dumps(storage.get("audit", {}).get("enabled", True))
        if url := storage.get("storage", {}).get("database_url"):
            env["MEDAI_STORAGE__DATABASE_URL"] = url
        env["MEDAI_MODELS"] = json.dumps([{"name": model, **server.overrides}])
        env["MEDAI_DEFAULT_MODEL"] = model
        cmd = [
            str(bin_dir / "uvicorn"),
            "--factory",
            "loadtests.naive_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--log-level",
            "warning",
        ]
    else:
        # NOTE: as `medai serve`; the caller's own settings win
        env = serve_env(server.kind == "serve-ht", HAPROXY_DIR) | env
        cmd = [str(bin_dir / "serve"), "run", str(serve_config(server))]
    return cmd, env


def start_server(server: Server) -> subprocess.Popen:
    cmd, env = server_command(server)
    log = open(server.workdir / f"{server.kind}.log", "ab")  # noqa: SIM115 (lives as long as the server)
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_port_free(port: int, timeout_s: float = 60) -> None:
    """A server left over from an earlier run would answer instead of the one measured."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(1)
    raise RuntimeError(f"port {port} is still in use (a leftover server? `ray stop --force`)")


def wait_ready(base_url: str, server: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}; see its log")
        try:
            if httpx.get(base_url + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{base_url} not ready in {timeout_s}s")


def stop_server(server: subprocess.Popen) -> None:
    """Stop it and everything it started: Serve and its Ray instance stop on SIGINT, and
    Ray's HAProxy (which Ray leaves running, holding the ports) is killed after them."""
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    stop_haproxy(HAPROXY_DIR)


class PeakRss(threading.Thread):
    """Samples the summed RSS of a process tree until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak, self.running = psutil.Process(pid), 0, True

    def run(self) -> None:
        while self.running:
            total = 0
            for proc in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.5)


def cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """Each process of the tree: its role and its CPU time so far. A Serve replica's role
    is its deployment (``ray::ServeReplica:medai:Ingress.handle_request`` is ``Ingress``),
    other processes go by name.

    NOTE: keyed by pid, because Ray renames an actor's process after the method it runs.
    """
    root, spent = psutil.Process(pid), {}
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            first = proc.cmdline()[0] if proc.cmdline() else proc.name()
            role = (
                first.rpartition(":")[2].partition(".")[0]
                if first.startswith("ray::")
                else proc.name()
            )
            times = proc.cpu_times()
            spent[proc.pid] = (role, times.user + times.system)
    return spent


def cpu_per_request(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], requests: float
) -> str:
    """The heaviest roles' CPU milliseconds per request between two ``cpu_seconds``."""
    spent: dict[str, float] = {}
    for pid, (role, seconds) in after.items():
        spent[role] = spent.get(role, 0.0) + seconds - before.get(pid, (role, 0.0))[1]
    top = sorted(spent.items(), key=lambda kv: -kv[1])
    shown = [f"{role} {1000 * s / requests:.2f}" for role, s in top[:5]]
    rest = sum(s for _, s in top[5:])
    total = sum(spent.values())
    return (
        f"{1000 * total / requests:.2f} ms: "
        + ", ".join(shown)
        + f", rest {1000 * rest / requests:.2f}"
    )


def wrk(url: str, script: Path, concurrency: int, seconds: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="chest-xray-demo")
    parser.add_argument("--endpoint", choices=sorted(PATHS), default="file")
    parser.add_argument("--servers", default="naive,serve,serve-ht")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--duration", type=int, default=15, help="seconds per concurrency")
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument(
        "--audit",
        choices=["on", "off", "both"],
        default="on",
        help="persistence (results + audit trail): on, off, or each server both ways",
    )
    parser.add_argument(
        "--database", help="storage.database_url for the served app (default: its SQLite file)"
    )
    parser.add_argument(
        "--route",
        default="none",
        help="comma-separated: none, ab (half to a copy of the model), shadow (copies to it)",
    )
    parser.add_argument(
        "--model-config",
        type=json.loads,
        default={},
        help="JSON overrides of the model's settings, e.g. '{\"max_concurrent_batches\": 2}'",
    )
    parser.add_argument(
        "--preprocessors",
        default="auto",
        help="served servers' Preprocessor replicas: auto (serve_config.yaml's autoscaling) "
        "or fixed counts, each run in turn, e.g. 1,2",
    )
    args = parser.parse_args()

    settings = Settings()
    build_demo_models(settings, include_on_demand=True)
    store = ModelStore(settings.model_store)
    # NOTE: the version the demo serves, not the newest: --route registers copies.
    spec = store.resolve(args.model, DEMO_VERSIONS.get(args.model))
    path = PATHS[args.endpoint].format(model=args.model)
    print(
        f"model {spec.ref}: input {spec.input_name} {spec.input_shape}; "
        f"{os.cpu_count()} CPUs; endpoint {path}",
        flush=True,
    )
    best_batch, raw = raw_throughput(store, spec, seconds=3)
    print(f"raw onnxruntime best: {raw:.1f} img/s at batch {best_batch}\n", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="medai-bench-"))
    token = local_token(settings, "bench", "clinician", ttl_s=12 * 3600)
    script = wrk_script(workdir, args.endpoint, spec, args.model, token)
    url = f"http://127.0.0.1:{args.port}{path}"

    audits = {"on": [True], "off": [False], "both": [True, False]}[args.audit]
    routes = args.route.split(",")
    counts = (
        [None] if args.preprocessors == "auto" else [int(n) for n in args.preprocessors.split(",")]
    )
    runs = [
        (k, a, r, n)
        for k in args.servers.split(",")
        for a in audits
        for r in routes
        for n in (counts if k != "naive" else [None])
    ]
    engineer = local_token(settings, "bench", "ml_engineer", ttl_s=12 * 3600)
    base_url = f"http://127.0.0.1:{args.port}"
    rows = []
    for base_kind, audit, route, preprocessors in runs:
        kind = base_kind if audit else f"{base_kind}/no-audit"
        kind += "" if route == "none" else f"/{route}"
        kind += "" if preprocessors is None else f"/pre{preprocessors}"
        wait_port_free(args.port)
        storage = storage_args(audit, args.database)
        server = start_server(
            Server(
                base_kind, args.model, args.port, workdir, args.model_config, storage, preprocessors
            )
        )
        try:
            wait_ready(base_url, server)
            if route != "none":
                route_model(base_url, engineer, store, args.model, route)
            rss = PeakRss(server.pid)
            rss.start()
            wrk(url, script, 8, 3)  # warm-up: batch queues, autoscaling, JIT caches
            for c in [int(x) for x in args.concurrency.split(",")]:
                before = cpu_seconds(server.pid)
                r = wrk(url, script, c, args.duration)
                cpu = cpu_per_request(before, cpu_seconds(server.pid), r["requests"])
                rows.append((kind, c, r, rss.peak))
                print(
                    f"  {kind:18} c={c:<3} {r['rps']:8.1f} req/s  ratio {r['rps'] / raw:5.2f}  "
                    f"p50 {r['p50_us'] / 1000:7.1f} ms  p99 {r['p99_us'] / 1000:7.1f} ms  "
                    f"errors {r['errors'] + r['non_2xx']}\n    CPU per request {cpu}",
                    flush=True,
                )
            rss.running = False
            if route != "none":
                time.sleep(2)  # the last shadow copies
                print(f"  routed: {route_summary(base_url, engineer, args.model)}", flush=True)
            # the server's peak over all its runs, on each of its rows
            rows = [(k, c, r, rss.peak if k == kind else p) for k, c, r, p in rows]
        finally:
            stop_server(server)

    print(
        f"\n{spec.ref} via {path}, raw onnxruntime {raw:.1f} img/s "
        f"(batch {best_batch}), {os.cpu_count()} CPUs"
    )
    print(
        f"{'server':18} {'conc':>4} {'req/s':>8} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'peak RSS MiB':>12}"
    )
    for kind, c, r, peak in rows:
        print(
            f"{kind:18} {c:>4} {r['rps']:8.1f} {r['rps'] / raw:6.2f} {r['p50_us'] / 1000:8.1f} "
            f"{r['p99_us'] / 1000:8.1f} {r['errors'] + r['non_2xx']:>6} {peak / 2**20:12.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
