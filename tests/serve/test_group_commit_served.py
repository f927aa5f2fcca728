"""The review's reproduction of finding 3, served: requests carrying a 300-character `sub`
among good concurrent ones. Before, their events joined the good ones' group commit and
broke it (10 of 20 good requests got 503); now the bad tokens are refused at the door and
every good request is answered and stored."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import TokenFactory
from tests.images import infer_body, pixels

pytestmark = pytest.mark.serve


def test_overlong_subs_among_concurrent_requests_fail_alone(
    served: str, token_for: TokenFactory, clinician: dict[str, str]
) -> None:
    long_sub = {"Authorization": f"Bearer {token_for('clinician', sub='x' * 300)}"}
    sends = [(clinician, 1100 + i) for i in range(20)] + [(long_sub, 1200 + i) for i in range(4)]

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post("/infer", json=infer_body(pixels(seed, 64, 64)), headers=headers)
                    for headers, seed in sends
                )
            )

    responses = asyncio.run(scenario())
    good, bad = responses[:20], responses[20:]
    assert [r.status_code for r in good] == [200] * 20, [
        r.text for r in good if r.status_code != 200
    ]
    assert all(r.status_code == 401 and "claim-length" in r.text for r in bad)
    with httpx.Client(base_url=served, timeout=60, headers=clinician) as client:
        for response in good:
            stored = client.get(f"/results/{response.json()['inference_id']}")
            assert stored.status_code == 200, stored.text
