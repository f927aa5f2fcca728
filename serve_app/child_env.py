"""The environment of a disposable child process that handles untrusted input.

Decoder workers and model inspection run what an uploader chose; they get only what
they need to start, never the platform's secrets (``MEDAI_*``, ``PG*``, and whatever
else the parent's environment holds): an allowlist, not a denylist.
"""

from __future__ import annotations

import os
import sys

PASSED_ON = ("PATH", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""Kept from the parent. NOTE: the OpenBLAS pair is set on processors where older OpenBLAS
builds compute wrong results or crash; a child doing numpy needs them as much."""
SINGLE_THREADED = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def child_environment() -> dict[str, str]:
    """The parent's import path, the variables above, one BLAS thread, nothing else."""
    env = {name: value for name, value in os.environ.items() if name in PASSED_ON}
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    env |= {name: "1" for name in SINGLE_THREADED}
    return env
