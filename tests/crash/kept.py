"""What a crash must not lose: every acknowledged inference is in the trail and stored."""

from __future__ import annotations

import httpx

from tests.api.test_records import whole_trail


def assert_kept(client: httpx.Client, answered: set[str]) -> set[str]:
    """Every id in ``answered`` audited and its result readable (``client`` an auditor's);
    the ids of every audited inference."""
    audited = {e["object_id"] for e in whole_trail(client, {}) if e["action"] == "inference"}
    assert not answered - audited, f"{len(answered - audited)} acknowledged, not audited"
    missing = [i for i in answered if client.get(f"/results/{i}").status_code != 200]
    assert not missing, f"{len(missing)} acknowledged, not stored"
    return audited
