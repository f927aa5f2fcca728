"""Decode untrusted files in disposable child processes with memory, CPU and time limits.

The header checks in ``dicom_guards`` and ``dicom_luts`` refuse the decoder bombs we
know of; these limits are for the next one. Each worker is a Python process
(``decode_worker``) that decodes one file at a time under ``RLIMIT_AS`` and a
per-file ``RLIMIT_CPU``; the caller waits at most ``decoding.timeout_s``. A worker
that runs out of memory, is killed by a limit or is too slow is discarded: that
request gets a 422 (rule ``decoder-limit``), a new worker replaces it on demand, and
every other request keeps its own worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from serve_app.child_env import child_environment
from serve_app.codecs.types import DecodedImage, EncodedImage
from serve_app.errors import InvalidInput, MedAIError, ServiceUnavailable
from serve_app.settings import DecodingSettings, LimitsSettings

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
"""How long a new worker may take to import its libraries and say it is ready."""
PIPE_BYTES = 1024 * 1024
"""Pipe buffer asked for (Linux's default ceiling): a decoded image crosses it in a few
writes rather than one context switch per 64 KiB."""


def _limit_error(detail: str) -> InvalidInput:
    return InvalidInput(detail, field="file", rule="decoder-limit")


class _Worker:
    def __init__(self, settings: DecodingSettings) -> None:
        jobs_read, jobs_write = os.pipe()
        answers_read, answers_write = os.pipe()
        for fd in (jobs_write, answers_write):
            with contextlib.suppress(OSError, AttributeError):  # Linux only, capped by the OS
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        command = [
            sys.executable,
            "-m",
            "serve_app.codecs.decode_worker",
            str(jobs_read),
            str(answers_write),
            str(settings.memory_bytes),
            str(settings.cpu_s),
        ]
        self.jobs = Connection(jobs_write, readable=False)
        self.answers = Connection(answers_read, writable=False)
        try:
            self.process = subprocess.Popen(
                command,
                pass_fds=(jobs_read, answers_write),
                env=child_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except OSError as exc:
            self.jobs.close()
            self.answers.close()
            raise ServiceUnavailable("no decoder worker could be started") from exc
        finally:
            os.close(jobs_read)
            os.close(answers_write)
        try:
            ready = self.answers.poll(START_TIMEOUT_S) and self.answers.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.discard()
            log.error("a decoder worker did not start")
            raise ServiceUnavailable("no decoder worker could be started")

    def alive(self) -> bool:
        return self.process.poll() is None

    def discard(self) -> int | None:
        """Kill the worker if it still runs; return how it ended."""
        if self.alive():
            self.process.kill()
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.jobs.close()
        self.answers.close()
        return code


class DecoderPool:
    """Up to ``settings.workers`` decoder processes, started on demand, replaced on failure.

    ``decode`` blocks: call it from a thread (the pipeline decodes off the event loop).
    Many threads may call it at once; each call holds one worker.
    """

    def __init__(self, settings: DecodingSettings, limits: LimitsSettings) -> None:
        self.settings = settings
        self.limits = limits
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(settings.workers)

    def warm(self) -> None:
        """Start every worker now rather than on the first files."""
        started = [self._checkout() for _ in range(self.settings.workers)]
        for worker in started:
            self._idle.put(worker)

    def decode(self, image: EncodedImage) -> DecodedImage:
        with self._slots:
            worker = self._checkout()
            answer, keep = self._run(worker, image)
            if keep:
                self._idle.put(worker)
        if isinstance(answer, MedAIError):
            raise answer
        return answer

    def _checkout(self) -> _Worker:
        """An idle live worker, or a new one (an idle one may have been killed meanwhile)."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return _Worker(self.settings)
            if worker.alive():
                return worker
            worker.discard()

    def _run(self, worker: _Worker, image: EncodedImage) -> tuple[DecodedImage | MedAIError, bool]:
        timeout_s = self.settings.timeout_s
        try:
            worker.jobs.send((image, self.limits))
            if not worker.answers.poll(timeout_s):
                worker.discard()
                log.warning("a decoder worker took over %ss; discarded", timeout_s)
                return _limit_error(f"decoding this file took over {timeout_s:g} s"), False
            answer, retire = worker.answers.recv()
        except (EOFError, OSError):
            return _limit_error(self._death(worker.discard())), False
        if retire:
            worker.discard()
        return answer, not retire

    def _death(self, exitcode: int | None) -> str:
        cause = {
            -signal.SIGXCPU: f"more than {self.settings.cpu_s:g} s of CPU",
            -signal.SIGKILL: "more memory than allowed, or was killed",
            -signal.SIGSEGV: "more memory than allowed (the decoder crashed)",
        }.get(exitcode or 0, "more than the decoder could give (it crashed)")
        log.warning("a decoder worker died (exit code %s); it will be replaced", exitcode)
        return f"decoding this file needed {cause}"

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().discard()
            except queue.Empty:
                return
