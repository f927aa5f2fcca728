"""Process sessions: a server (or a Ray node) started with ``start_new_session=True`` owns
every process it spawns, whose session id is the leader's pid; killing the session is
killing all of it at once, as a crash or a lost machine would."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil


def session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getsid(process.pid) == sid:
                found.append(process)
    return found


def kill_session(sid: int, timeout_s: float = 60) -> list[psutil.Process]:
    """SIGKILL every process of session ``sid`` until none is left (or ``timeout_s``);
    the survivors, if any."""
    deadline = time.monotonic() + timeout_s
    while (alive := session_processes(sid)) and time.monotonic() < deadline:
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
    return session_processes(sid)
