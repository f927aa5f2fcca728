"""Peer servers on the Open Inference Protocol (KServe v2), beside raw ONNX Runtime.

    python -m loadtests.peers --model chest-xray-demo --peers plain,triton,mlserver
    python -m loadtests.peers --model resnet50-bench --concurrency 1,8 --duration 20

Each peer serves the platform's own model file (from the model store) on
``POST /v2/models/{name}/infer`` and gets the same request, the tensor the
preprocessor makes of one image, as ``bench.py --endpoint v2`` sends the platform:

- ``plain``: FastAPI + ONNX Runtime on one uvicorn process, no batching, v2 binary body;
- ``triton``: NVIDIA Triton (``nvidia-pytriton``) with a Python model calling ONNX Runtime,
  Triton's dynamic batcher, v2 binary body;
- ``mlserver``: MLServer with a custom runtime calling ONNX Runtime, adaptive batching,
  v2 JSON body (MLServer 1.7 has no binary-data extension);
- ``platform``: this checkout served by Ray Serve in high-throughput mode, and
  ``platform-1p``: the same app in one uvicorn process (``bench.py``'s ``serve-ht`` and
  ``naive``), whole stack on: a clinician's token, validation, each answer stored and
  audited before its 200.

Each peer runs in a virtualenv of its own under ``--venvs``, made with ``uv`` on first use
(needs the network then), never in the project's. The same ``wrk`` as ``bench.py`` drives
each one at each concurrency; the table at the end gives each figure as a ratio to raw
ONNX Runtime (in-process, best batch size) and to the best peer. Then each peer gets a few
hostile v2 requests and the status codes it answered are tabled. Every server the script
starts is gone when it stops. A script, not a test: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

from loadtests import bench
from loadtests.bench import WRK_SCRIPT, raw_throughput, wrk
from loadtests.payloads import image_for, v2_body
from loadtests.ports import free_port
from medai_cli.common import local_token
from medai_cli.main import build_demo_models, stop_haproxy
from serve_app.catalog.store import ModelStore
from serve_app.codecs.tensors import datatype_of
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.preprocessing import prepare
from serve_app.settings import REPO_ROOT, Settings


@dataclass(frozen=True)
class Peer:
    packages: tuple[str, ...]
    wire: str
    """``binary``: the v2 binary-data extension; ``json``: v2 JSON ``data``."""


PEERS = {
    "plain": Peer(("fastapi", "uvicorn[standard]", "onnxruntime", "numpy"), "binary"),
    "triton": Peer(("nvidia-pytriton", "onnxruntime", "numpy"), "binary"),
    "mlserver": Peer(("mlserver", "onnxruntime", "numpy"), "json"),
    # The platform itself, from this checkout (its own venv), whole stack on: a clinician's
    # token, validation, each answer stored and audited on SQLite before its 200.
    "platform": Peer((), "binary"),
    "platform-1p": Peer((), "binary"),
}
PLATFORM = {"platform": "serve-ht", "platform-1p": "naive"}
"""The platform's servers as ``bench.py`` names them: Ray Serve high-throughput mode, and
the same app in one uvicorn process."""
SAME_SIZE_WRONG_TYPE = {"float32": "INT32", "float16": "INT16", "uint8": "INT8"}
HOSTILE_TIMEOUT_S = 10


class Unavailable(RuntimeError):
    """A peer that could not be installed or started; the run goes on without it."""


def uv() -> str:
    here = Path(sys.executable).parent / "uv"
    found = str(here) if here.exists() else shutil.which("uv")
    if not found:
        raise Unavailable("uv not found (beside this Python or on PATH)")
    return found


def ensure_venv(venvs: Path, name: str, peer: Peer) -> Path:
    """The peer's virtualenv, made and installed on first use; its Python."""
    if name in PLATFORM:
        return Path(sys.executable)
    venv = venvs / name
    python = venv / "bin" / "python"
    marker = venv / ".medai-peer"
    wanted = " ".join(peer.packages)
    if marker.exists() and marker.read_text() == wanted:
        return python
    print(f"  installing {name} into {venv}: {wanted}", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    # NOTE: the interpreter under the project's venv, not the venv: the peers' own packages
    # (onnxruntime, not onnxruntime-gpu) must not mix with the project's.
    base = getattr(sys, "_base_executable", sys.executable)
    for cmd in (
        [uv(), "venv", "-q", "--allow-existing", "--python", base, str(venv)],
        [uv(), "pip", "install", "-q", "--python", str(python), *peer.packages],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise Unavailable(f"`{' '.join(cmd[:3])}` failed: {' | '.join(tail)}")
    marker.write_text(wanted)
    return python


LIVE: set[Server] = set()


@dataclass(eq=False)
class Server:
    """A peer server in a process group (session) of its own."""

    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    cleanup: Callable[[], None] | None = None
    """Runs after the server stopped: what it leaves behind when it dies."""
    proc: subprocess.Popen = field(init=False)

    def __post_init__(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        LIVE.add(self)

    def log_tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after 30 s; then any descendant that left the group."""
        LIVE.discard(self)
        pid, tree = self.proc.pid, []
        with contextlib.suppress(psutil.Error):
            tree = psutil.Process(pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and group_alive(pid):
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.cleanup is not None:
            self.cleanup()


def triton_leftovers(workspace: Path) -> None:
    """Triton copies a Python model's folder to ``/tmp/folderXXXXXX`` (a fixed template)
    and leaves it there when it crashes; the copy's config names the workspace."""
    shutil.rmtree(workspace, ignore_errors=True)  # PyTriton's, when it could not clean it
    for config in Path("/tmp").glob("folder*/config.pbtxt"):
        with contextlib.suppress(OSError):
            if f'"{workspace}"' in config.read_text():
                shutil.rmtree(config.parent)


def platform_leftovers() -> None:
    """Ray's HAProxy, which Ray leaves running (``bench.stop_server`` does the same)."""
    stop_haproxy(bench.HAPROXY_DIR)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_all() -> None:
    for server in list(LIVE):
        server.stop()


@dataclass
class Request:
    body: bytes
    headers: dict[str, str]


def requests_for(tensor: np.ndarray, input_name: str) -> dict[str, Request]:
    """The measured request in each wire format."""
    body, headers = v2_body(tensor, input_name)
    entry = {
        "name": input_name,
        "shape": list(tensor.shape),
        "datatype": datatype_of(tensor.dtype),
    }
    data = json.dumps({"inputs": [entry | {"data": tensor.ravel().tolist()}]}).encode()
    return {
        "binary": Request(body, headers),
        "json": Request(data, {"Content-Type": "application/json"}),
    }


def hostile_requests(tensor: np.ndarray, input_name: str) -> dict[str, Request]:
    """Requests a v2 server must refuse, quickly and without falling over."""
    raw, dtype = tensor.tobytes(), datatype_of(tensor.dtype)

    def binary(entry: dict, tail: bytes = raw, length: int | None = None) -> Request:
        header = json.dumps({"inputs": [{"name": input_name} | entry]}).encode()
        size = len(header) if length is None else length
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(size),
        }
        return Request(header + tail, headers)

    good = {"shape": list(tensor.shape), "datatype": dtype}
    sized = good | {"parameters": {"binary_data_size": len(raw)}}
    broken = b'{"inputs": [{"name": "' + input_name.encode() + b'", "shape": [1'
    json_entry = {"name": input_name, "shape": list(tensor.shape), "datatype": dtype}
    return {
        "malformed JSON header": Request(
            broken + raw,
            {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(broken)),
            },
        ),
        "shape [2**31, 2**31]": binary(sized | {"shape": [2**31, 2**31]}),
        "binary_data_size past the end": binary(
            good | {"parameters": {"binary_data_size": 2 * len(raw)}}
        ),
        f"wrong datatype ({SAME_SIZE_WRONG_TYPE[tensor.dtype.name]})": binary(
            sized | {"datatype": SAME_SIZE_WRONG_TYPE[tensor.dtype.name]}
        ),
        "header length > body": binary(sized, length=len(raw) + 10_000),
        "JSON: shape [2**31, 2**31], 1 value": Request(
            json.dumps({"inputs": [json_entry | {"shape": [2**31, 2**31], "data": [0]}]}).encode(),
            {"Content-Type": "application/json"},
        ),
        "JSON: fewer values than shape": Request(
            json.dumps({"inputs": [json_entry | {"data": [0, 0, 0]}]}).encode(),
            {"Content-Type": "application/json"},
        ),
    }


def ask(url: str, request: Request) -> str:
    try:
        response = httpx.post(
            url, content=request.body, headers=request.headers, timeout=HOSTILE_TIMEOUT_S
        )
    except httpx.TimeoutException:
        return "timeout"
    except httpx.RemoteProtocolError:
        return "closed"  # the connection, without an answer
    except httpx.ConnectError:
        return "refused"
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return str(response.status_code)


def start_peer(
    name: str, python: Path, model_path: Path, model: str, workdir: Path, batching: dict
) -> tuple[Server, str]:
    """The peer's server, and its infer URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env |= {
        "PYTHONPATH": str(REPO_ROOT),
        "PEER_MODEL_PATH": str(model_path),
        "PEER_MODEL_NAME": model,
        "PEER_MAX_BATCH": str(batching["max_batch"]),
        "PEER_BATCH_WAIT_MS": str(batching["wait_ms"]),
    }
    bindir, cleanup = python.parent, None
    if name in PLATFORM:
        cmd, env = bench.server_command(bench.Server(PLATFORM[name], model, port, workdir))
        server = Server(cmd, env, REPO_ROOT, workdir / f"{name}.log", platform_leftovers)
        return server, f"http://127.0.0.1:{port}/v2/models/{model}/infer"
    if name == "plain":
        cmd = [str(python), "-m", "uvicorn", "loadtests.peer_servers.plain_server:app"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        cmd += ["--log-level", "warning"]
    elif name == "triton":
        # NOTE: Triton's Python-backend stub links the system's libpython; with another
        # interpreter's stdlib in the venv the model fails to load, so the venv
        # interpreter's own shared libpython goes first.
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        env["LD_LIBRARY_PATH"] = ":".join(filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
        cmd = [str(python), "-m", "loadtests.peer_servers.triton_server", str(port)]
        cmd += [str(free_port()), str(free_port())]
        workspace = workdir / f"triton-{port}"
        env["PEER_TRITON_WORKSPACE"] = str(workspace)
        cleanup = functools.partial(triton_leftovers, workspace)
    elif name == "mlserver":
        folder = workdir / "mlserver"
        folder.mkdir(exist_ok=True)
        settings = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "metrics_endpoint": None,
            "parallel_workers": 0,  # the model in the HTTP process, as the other peers
            "debug": False,  # NOTE: MLServer's access log is on while debug is
        }
        model_settings = {
            "name": model,
            "implementation": "loadtests.peer_servers.mlserver_runtime.PeerRuntime",
            "max_batch_size": batching["max_batch"],
            "max_batch_time": batching["wait_ms"] / 1000,
        }
        (folder / "settings.json").write_text(json.dumps(settings))
        (folder / "model-settings.json").write_text(json.dumps(model_settings))
        cmd = [str(bindir / "mlserver"), "start", str(folder)]
    else:
        raise Unavailable(f"unknown peer {name}")
    server = Server(cmd, env, workdir, workdir / f"{name}.log", cleanup)
    return server, f"http://127.0.0.1:{port}/v2/models/{model}/infer"


def wait_ready(server: Server, url: str, request: Request, timeout_s: float = 240) -> str:
    """Waits for the first 200 to the measured request; its answer, shortened."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise Unavailable(f"exited with {server.proc.returncode}: {server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.post(url, content=request.body, headers=request.headers, timeout=30)
            if response.status_code == 200:
                return response.text[:120]
            if response.status_code not in (404, 503):
                raise Unavailable(f"answered {response.status_code}: {response.text[:200]}")
        time.sleep(1)
    raise Unavailable(f"no 200 in {timeout_s:.0f} s: {server.log_tail()}")


def wrk_script(workdir: Path, name: str, request: Request, token: str) -> Path:
    body = workdir / f"{name}.body"
    body.write_bytes(request.body)
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in request.headers.items())
    script = workdir / f"{name}.lua"
    script.write_text(WRK_SCRIPT.format(body=body, headers=lines, token=token))
    return script


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference else "-"


def report(rows: list, raw: float, best_batch: int, unavailable: dict, title: str) -> None:
    print(f"\n{title}: raw onnxruntime {raw:.1f} img/s (batch {best_batch}), {os.cpu_count()} CPUs")
    print("ratios: req/s to raw and to the best peer at that concurrency (1.00 = the best);")
    print("p50/p99 to the best peer's (1.00 = the lowest) and to c / raw, the closed-loop floor")
    print(
        f"{'peer':11} {'conc':>4} {'req/s':>8} {'÷raw':>5} {'÷best':>5} {'p50 ms':>8} "
        f"{'÷best':>5} {'÷floor':>6} {'p99 ms':>8} {'÷best':>5} {'errors':>6}"
    )
    for name, c, r in rows:
        same = [x for _, cc, x in rows if cc == c]
        best_rps = max(x["rps"] for x in same)
        best_p50 = min(x["p50_us"] for x in same)
        best_p99 = min(x["p99_us"] for x in same)
        floor_us = c / raw * 1e6 if raw else 0
        print(
            f"{name:11} {c:>4} {r['rps']:8.1f} {ratio(r['rps'], raw):>5} "
            f"{ratio(r['rps'], best_rps):>5} {r['p50_us'] / 1000:8.1f} "
            f"{ratio(r['p50_us'], best_p50):>5} {ratio(r['p50_us'], floor_us):>6} "
            f"{r['p99_us'] / 1000:8.1f} {ratio(r['p99_us'], best_p99):>5} "
            f"{r['errors'] + r['non_2xx']:>6}"
        )
    for name, reason in unavailable.items():
        print(f"{name:11} unavailable: {reason}")


def hostile_table(answers: dict[str, dict[str, str]]) -> None:
    if not answers:
        return
    peers = list(answers)
    cases = list(next(iter(answers.values())))
    width = max(len(c) for c in cases)
    print(
        f"\nwho answered what (HTTP status; `timeout` after {HOSTILE_TIMEOUT_S} s; `closed`: "
        "no answer; DOWN: the measured request failed next, so the peer was restarted)"
    )
    print(f"{'request':{width}} " + " ".join(f"{p:>12}" for p in peers))
    for case in cases:
        print(f"{case:{width}} " + " ".join(f"{answers[p][case]:>12}" for p in peers))


def on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="chest-xray-demo")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--duration", type=int, default=15, help="seconds per concurrency")
    parser.add_argument(
        "--venvs", type=Path, default=Path("~/.cache/medai-peers"), help="the peers' virtualenvs"
    )
    parser.add_argument("--max-batch", type=int, default=16, help="batching peers' max batch")
    parser.add_argument("--batch-wait-ms", type=float, default=5, help="their max wait")
    args = parser.parse_args()
    names = args.peers.split(",")
    if unknown := [n for n in names if n not in PEERS]:
        parser.error(f"unknown peers {unknown}; known: {', '.join(PEERS)}")
    if not shutil.which("wrk"):
        parser.error("needs wrk (apt-get install wrk)")
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    batching = {"max_batch": args.max_batch, "wait_ms": args.batch_wait_ms}

    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, on_signal)

    settings = Settings()
    build_demo_models(settings, include_on_demand=True)
    store = ModelStore(settings.model_store)
    spec = store.resolve(args.model, bench.DEMO_VERSIONS.get(args.model))
    workdir = Path(tempfile.mkdtemp(prefix="medai-peers-"))
    model_path = workdir / f"{spec.name}.onnx"
    model_path.write_bytes(store.read_verified(spec))
    atexit.register(model_path.unlink, missing_ok=True)  # the logs stay
    tensor = prepare(DecodedImage(image_for(spec, seed=1), ImageFormat.PIXELS), spec)
    wire = requests_for(tensor, spec.input_name)
    hostile = hostile_requests(tensor, spec.input_name)
    print(
        f"model {spec.ref}: input {spec.input_name} {list(tensor.shape)} {tensor.dtype}; "
        f"v2 binary body {len(wire['binary'].body)} B, JSON body {len(wire['json'].body)} B; "
        f"{os.cpu_count()} CPUs; logs in {workdir}",
        flush=True,
    )
    best_batch, raw = raw_throughput(store, spec, seconds=min(3, args.duration))
    print(f"raw onnxruntime best: {raw:.1f} img/s at batch {best_batch}\n", flush=True)

    rows, unavailable, answers = [], {}, {}
    venvs = args.venvs.expanduser()
    token = local_token(settings, "peers", "clinician", ttl_s=12 * 3600)
    auth = {"Authorization": f"Bearer {token}"}
    for name in names:
        good, live = wire[PEERS[name].wire], []
        cases = hostile
        if name in PLATFORM:  # the platform asks for a token; the peers ignore it
            good = Request(good.body, good.headers | auth)
            cases = {k: Request(r.body, r.headers | auth) for k, r in hostile.items()}

        def launch(name: str = name, good: Request = good, live: list = live) -> str:
            """Starts the peer (kept in ``live`` for the ``finally``); its infer URL."""
            python = ensure_venv(venvs, name, PEERS[name])
            server, url = start_peer(name, python, model_path, spec.name, workdir, batching)
            live.append(server)
            started = time.monotonic()
            first = wait_ready(server, url, good)
            print(
                f"{name}: ready in {time.monotonic() - started:.1f} s at {url} "
                f"({PEERS[name].wire} body); first answer {first!r}",
                flush=True,
            )
            return url

        try:
            url = launch()
            script = wrk_script(workdir, name, good, token)
            wrk(url, script, 8, min(3, args.duration))  # warm-up: batchers, caches
            for c in concurrencies:
                r = wrk(url, script, c, args.duration)
                rows.append((name, c, r))
                print(
                    f"  {name:11} c={c:<3} {r['rps']:8.1f} req/s  ratio {r['rps'] / raw:5.2f}  "
                    f"p50 {r['p50_us'] / 1000:7.1f} ms  p99 {r['p99_us'] / 1000:7.1f} ms  "
                    f"errors {r['errors'] + r['non_2xx']}",
                    flush=True,
                )
            answers[name] = {}
            for case, request in cases.items():
                answer = ask(url, request)
                if ask(url, good) != "200":  # it fell over: say so, and start it again
                    answer += " DOWN"
                    print(f"{name}: down after {case!r}: {live[-1].log_tail(3)}", flush=True)
                    live.pop().stop()
                    url = launch()
                answers[name][case] = answer
        except (Unavailable, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            reason = str(exc) if isinstance(exc, Unavailable) else f"{exc}: {exc.stderr}"
            unavailable[name] = reason
            print(f"{name}: unavailable: {reason}", flush=True)
        finally:
            for server in live:
                server.stop()

    report(rows, raw, best_batch, unavailable, f"{spec.ref} via /v2/models/{spec.name}/infer")
    hostile_table(answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
