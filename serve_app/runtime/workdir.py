"""An empty working directory for the processes that load model files.

ONNX Runtime resolves the relative paths a model file names (external tensor data)
against the working directory, which under ``make serve`` is the repository, secrets
and database included. External data is refused before any session is made; a replica
that loads models also runs from a fresh, empty, read-only directory, so that a path
slipping past that check still resolves to nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def enter_empty_directory() -> Path:
    """``chdir`` into a fresh directory and remove it: a relative path then resolves to
    nothing and nothing can be made there. Resolve any relative settings path before
    calling this.

    NOTE: removed at once, not on shutdown: a replica that is killed or scaled away never
    cleans up, and every replica start left one directory in ``/tmp``.
    """
    path = Path(tempfile.mkdtemp(prefix="medai-cwd-"))
    path.chmod(0o500)
    os.chdir(path)
    path.rmdir()
    return path
