"""Inspecting an upload in a disposable child process with memory, CPU and time limits.

Registration parses the uploaded graph, loads it and runs it once on a zero input: the
uploader's code, in effect. A graph can ask for any amount of memory (``Expand`` or
``ConstantOfShape`` to a huge shape) or loop for ever (``Loop``), so it runs in a fresh
Python process (``python -m serve_app.runtime.inspection``) under ``RLIMIT_AS`` and
``RLIMIT_CPU`` and a wall-clock deadline, from an empty working directory and without
the platform's secrets in its environment. A graph that breaks a limit costs that
process, never the registry: the upload is a 422 naming the limit.

NOTE: a fresh interpreter, not a fork: forking the registry's Ray worker (threads,
sockets) is unsafe, and ``multiprocessing`` re-imports the parent's main module. The
price is about a second of interpreter start per registration.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from serve_app.catalog.spec import ModelSpec
from serve_app.child_env import child_environment
from serve_app.runtime.findings import Examination, Finding, Verdict
from serve_app.settings import LimitsSettings, RuntimeSettings


@dataclass(frozen=True)
class InspectionLimits:
    memory_bytes: int
    cpu_s: int
    timeout_s: float

    @classmethod
    def of(cls, limits: LimitsSettings) -> InspectionLimits:
        return cls(
            limits.model_inspect_memory_bytes,
            limits.model_inspect_cpu_s,
            limits.model_inspect_timeout_s,
        )


def _refused(detail: str, rule: str, setting: str) -> Examination:
    fix = f"make the model lighter, or raise {setting} if the server can afford it"
    return Examination([Finding(Verdict.REFUSED, rule, detail, fix)])


def inspect_in_child(
    data: bytes, name: str, version: str, limits: InspectionLimits
) -> tuple[ModelSpec, float]:
    """The upload's spec and its zero-input latency in ms, read in a limited child process
    (blocking). Raises ``InvalidInput`` (field ``file``) for a bad model or a broken limit:
    ``memory-limit``, ``cpu-limit``, ``time-limit``."""
    found = examine_in_child(data, limits, name, version)
    if found.refusals:
        raise found.refusals[0].error()
    assert found.spec is not None and found.latency_ms is not None
    return found.spec, found.latency_ms


def examine_in_child(
    data: bytes, limits: InspectionLimits, name: str = "check", version: str = "0"
) -> Examination:
    """Every finding about the upload (``serve_app.runtime.examine``), made in a limited
    child process (blocking); a broken limit is one refused finding."""
    with tempfile.TemporaryDirectory(prefix="medai-inspect-") as scratch:
        upload = Path(scratch) / "upload.onnx"
        upload.write_bytes(data)
        empty = Path(scratch) / "cwd"
        empty.mkdir(mode=0o500)
        argv = [str(upload), name, version, str(limits.memory_bytes), str(limits.cpu_s)]
        try:
            done = subprocess.run(
                [sys.executable, "-m", "serve_app.runtime.inspection", *argv],
                cwd=empty,
                env=child_environment(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=limits.timeout_s,
            )
        except subprocess.TimeoutExpired:  # NOTE: run() has killed it
            return _refused(
                f"inspecting the model took longer than {limits.timeout_s} s "
                "(limits.model_inspect_timeout_s)",
                "time-limit",
                "limits.model_inspect_timeout_s",
            )
    if done.returncode != 0 or not done.stdout:
        return _limit_broken(done.returncode, limits)
    answer = json.loads(done.stdout)
    spec = answer["spec"]
    return Examination(
        [Finding.from_json(f) for f in answer["findings"]],
        None if spec is None else ModelSpec.model_validate(spec),
        answer["latency_ms"],
    )


def _limit_broken(returncode: int, limits: InspectionLimits) -> Examination:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return _refused(
            f"inspecting the model used more than {limits.cpu_s} s of CPU "
            "(limits.model_inspect_cpu_s)",
            "cpu-limit",
            "limits.model_inspect_cpu_s",
        )
    # NOTE: under RLIMIT_AS a failed allocation in native code can abort the child
    # (std::bad_alloc out of a worker thread) rather than raise.
    return _refused(
        f"inspecting the model ended the inspecting process (exit {returncode}); it most "
        f"likely needed more than {limits.memory_bytes} bytes "
        "(limits.model_inspect_memory_bytes)",
        "memory-limit",
        "limits.model_inspect_memory_bytes",
    )


def _main(path: str, name: str, version: str, memory_bytes: str, cpu_s: str) -> None:
    """The child: limits first, then the upload; the answer as one JSON line on stdout."""
    memory, cpu = int(memory_bytes), int(cpu_s)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # NOTE: SIGXCPU at the soft limit, SIGKILL a second later if it is ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    started = time.perf_counter()
    try:
        from serve_app.runtime.examine import examine

        data = Path(path).read_bytes()
        started = time.perf_counter()
        # NOTE: one thread: ONNX Runtime's pool then reserves no address space per core,
        # and the CPU limit bounds the wall time too.
        runtime = RuntimeSettings(device="cpu", intra_op_threads=1)
        found = examine(data, name, version, runtime)
    except MemoryError:
        found = _refused(
            "inspecting the model ran out of its memory limit",
            "memory-limit",
            "limits.model_inspect_memory_bytes",
        )
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    answer = {
        "findings": [f.to_json() for f in found.findings],
        "spec": None if found.spec is None else found.spec.model_dump(mode="json"),
        "latency_ms": latency_ms,
    }
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    _main(*sys.argv[1:])
