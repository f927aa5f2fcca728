"""What a child process handling untrusted input inherits from its parent."""

from __future__ import annotations

import pytest

from serve_app.child_env import child_environment


def test_only_allowlisted_variables_reach_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDAI_JWT_SECRET", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "HOME"):
        monkeypatch.setenv(name, "secret value")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    env = child_environment()
    assert "secret value" not in env.values()
    assert env["OPENBLAS_CORETYPE"] == "Haswell"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["PYTHONPATH"]
