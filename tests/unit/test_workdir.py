"""The working directory of the processes that load model files: empty, and left behind
nowhere (each one runs in a child process, so that this test process keeps its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, os, sys
from serve_app.runtime.workdir import enter_empty_directory
path = enter_empty_directory()
seen = {"path": str(path), "exists": path.exists()}
for name, attempt in {
    "read": lambda: open("pyproject.toml").read(),
    "write": lambda: open("made-here", "w").write("x"),
    "mkdir": lambda: os.mkdir("made-here"),
}.items():
    try:
        attempt()
        seen[name] = "done"
    except OSError as error:
        seen[name] = type(error).__name__
json.dump(seen, sys.stdout)
"""


def test_a_relative_path_resolves_to_nothing_and_no_directory_is_left() -> None:
    repository = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=repository, capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout)
    assert not Path(seen["path"]).exists() and seen["exists"] is False
    assert (seen["read"], seen["write"], seen["mkdir"]) == (
        "FileNotFoundError",
        "FileNotFoundError",
        "FileNotFoundError",
    )
