"""Failed authentications are counted in bounded memory, whatever a flood sends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from serve_app.http.auth_failures import ANY_CLIENT, MAX_PATH_CHARS, FailedAuthentications
from serve_app.schemas.audit import AuditRecord
from tests.local_app import trail_in


def test_a_flood_from_many_addresses_is_merged_not_held(tmp_path: Path) -> None:
    async def main() -> tuple[FailedAuthentications, list[AuditRecord]]:
        async with trail_in(tmp_path) as trail:
            tally = FailedAuthentications(trail, window_s=3600, max_keys=3)
            for i in range(10_000):
                client = f"10.0.{i // 256}.{i % 256}"
                tally.note("malformed", client, "GET", f"/{i}" + "x" * 20_000)
            await tally.flush()
            return tally, await trail.entries(0, 1000)

    tally, entries = asyncio.run(main())
    details = [dict(e.details) for e in entries]
    assert len(details) == 4  # three addresses, then everyone else merged
    assert sum(d["count"] for d in details) == 10_000
    assert tally.merged == 10_000 - 3
    (merged,) = [d for d in details if d["client"] == ANY_CLIENT]
    assert merged["count"] == tally.merged
    assert len(merged["paths"]) == 8
    assert all(len(p) == MAX_PATH_CHARS for d in details for p in d["paths"])
    sample = tally.metrics.registry.get_sample_value
    assert sample("medai_auth_failures_total", {"outcome": "audited"}) == 10_000
    assert sample("medai_auth_failures_total", {"outcome": "merged"}) == tally.merged
