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
    """Make a fresh empty directory nobody can write to and ``chdir`` into it; resolve
    any relative settings path before calling this."""
    path = Path(tempfile.mkdtemp(prefix="medai-cwd-"))
    path.chmod(0o500)
    os.chdir(path)
    return path
