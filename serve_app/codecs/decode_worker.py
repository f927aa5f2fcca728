"""A decoder worker process: ``python -m serve_app.codecs.decode_worker IN OUT MEMORY CPU``.

Started by ``sandbox.DecoderPool``. It reads pickled ``(EncodedImage, LimitsSettings)``
from file descriptor IN and writes ``(DecodedImage | MedAIError, retire)`` to OUT,
under ``RLIMIT_AS`` (its libraries plus MEMORY bytes) and ``RLIMIT_CPU`` (CPU more
seconds per file). Its environment holds no secrets; it reads no files.
"""

from __future__ import annotations

import math
import os
import resource
import signal
import sys
from multiprocessing.connection import Connection

from serve_app.codecs.decode import decode
from serve_app.codecs.types import DecodedImage
from serve_app.errors import InvalidInput, MedAIError

READY = "ready"


def address_space() -> int:
    """Bytes of virtual memory this process maps now (Linux), else 0."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _cpu_used_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(jobs: Connection, answers: Connection, memory_bytes: int, cpu_s: float) -> None:
    """Decode each file received, answer the image or our error, until the parent goes."""
    baseline = address_space()
    if baseline:
        limit = baseline + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    answers.send(READY)
    while True:
        try:
            image, limits = jobs.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        # NOTE: RLIMIT_CPU counts the process's whole life: each file gets cpu_s more.
        soft = math.ceil(_cpu_used_s() + cpu_s)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
        retire = False
        try:
            answer: DecodedImage | MedAIError = decode(image, limits)
        except MedAIError as exc:
            answer = exc
        except MemoryError:
            detail = "decoding this file needs more memory than allowed"
            answer = InvalidInput(detail, field="file", rule="decoder-limit")
            retire = True  # a library may have been left half-way; start afresh
        try:
            answers.send((answer, retire))
        except MemoryError:
            return  # decoded, but its pickle does not fit: the parent sees the exit
        if retire:
            return


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers end
    jobs_fd, answers_fd, memory_bytes, cpu_s = argv
    jobs = Connection(int(jobs_fd), writable=False)
    answers = Connection(int(answers_fd), readable=False)
    serve(jobs, answers, int(memory_bytes), float(cpu_s))


if __name__ == "__main__":
    main(sys.argv[1:])
