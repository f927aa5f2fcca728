"""Stored results and the audit trail over HTTP: who may read what, and every read audited.

Against the in-process app (a ``DatabaseTrail`` on a SQLite file of its module's) and the
Ray-served app (the audit-writer deployment over SQLite), whose trail the whole session
shares: tests find their own entries by id, never by count.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import TokenFactory
from tests.images import encode, infer_body, pixels
from tests.problems import assert_problem, assert_still_serving

PATIENT = "MRN-0042-RECORDS"


def as_role(token_for: TokenFactory, role: str, sub: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(role, sub=sub)}"}


def whole_trail(api: httpx.Client, auditor: dict[str, str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.get("/audit", params={"after_seq": after, "limit": 1000}, headers=auditor)
        assert page.status_code == 200, page.text
        body = page.json()
        entries += body["entries"]
        if body["next_after_seq"] is None:
            return entries
        after = body["next_after_seq"]


def test_an_answer_is_stored_and_audited_before_it_is_sent(
    api: httpx.Client, auditor: dict[str, str], clinician: dict[str, str]
) -> None:
    answer = api.post("/infer", json=infer_body(pixels(70, 64, 64), patient_id=PATIENT))
    assert answer.status_code == 200, answer.text
    sent = answer.json()

    stored = api.get(f"/results/{sent['inference_id']}")
    assert stored.status_code == 200, stored.text
    row = stored.json()
    for name in ("model_name", "model_version", "outputs", "prediction", "threshold"):
        assert row[name] == sent[name], name
    assert row["confidence"] == sent["confidence_score"]
    assert row["requested_by"] == "test-clinician"
    assert row["patient_ref"].startswith("pt_") and PATIENT not in stored.text

    (entry,) = [e for e in whole_trail(api, auditor) if e["object_id"] == sent["inference_id"]]
    assert entry["action"] == "inference"
    assert (entry["actor"], entry["role"]) == ("test-clinician", "clinician")
    assert entry["model_version"] == f"{sent['model_name']}:{sent['model_version']}"
    assert PATIENT not in str(entry)


def test_a_batch_stores_each_successful_image_under_its_batch_id(api: httpx.Client) -> None:
    too_small = {"width": 32, "height": 32, "dtype": "uint8", "data": [0] * 1024}
    images = [infer_body(pixels(71, 64, 64)), too_small, infer_body(pixels(72, 64, 64))]
    response = api.post("/infer/batch", json={"images": images})
    assert response.status_code == 200, response.text
    body = response.json()
    ids = [item["result"]["inference_id"] for item in body["results"] if item["result"]]
    assert len(ids) == 2 and body["failed"] == 1
    for inference_id in ids:
        stored = api.get(f"/results/{inference_id}").json()
        assert stored["batch_id"] == body["batch_id"]


def test_files_are_stored_too(api: httpx.Client) -> None:
    files = {"file": ("scan.png", encode(pixels(73, 96, 96), "PNG"), "image/png")}
    sent = api.post("/infer/file", files=files).json()
    assert api.get(f"/results/{sent['inference_id']}").json()["outputs"] == sent["outputs"]


def test_who_may_read_a_result(
    api: httpx.Client, token_for: TokenFactory, auditor: dict[str, str]
) -> None:
    sent = api.post("/infer", json=infer_body(pixels(74, 64, 64))).json()
    path = f"/results/{sent['inference_id']}"

    assert api.get(path, headers=as_role(token_for, "admin")).status_code == 200
    assert api.get(path, headers=auditor).status_code == 200
    # Another clinician is told nothing exists, so ids cannot be probed.
    other = api.get(path, headers=as_role(token_for, "clinician", sub="someone-else"))
    assert_problem(other, 404, "inference_id", "exists")
    assert_problem(
        api.get(path, headers=as_role(token_for, "ml_engineer")), 403, "role", "permission"
    )
    assert_problem(api.get(path, headers={"Authorization": ""}), 401, "authorization")


def test_a_reader_lists_their_own_newest_results_and_only_theirs(
    api: httpx.Client, token_for: TokenFactory, auditor: dict[str, str]
) -> None:
    me = f"own-{uuid.uuid4().hex[:8]}"
    mine = as_role(token_for, "clinician", sub=me)
    theirs = as_role(token_for, "clinician", sub=f"own-{uuid.uuid4().hex[:8]}")
    sent = [
        api.post("/infer", json=infer_body(pixels(seed, 64, 64)), headers=mine).json()
        for seed in (80, 81, 82)
    ]
    api.post("/infer", json=infer_body(pixels(83, 64, 64)), headers=theirs)

    listed = api.get("/results", params={"limit": 2}, headers=mine)
    assert listed.status_code == 200, listed.text
    assert [r["inference_id"] for r in listed.json()] == [s["inference_id"] for s in sent[:0:-1]]
    everything = api.get("/results", headers=mine).json()
    assert {r["inference_id"] for r in everything} == {s["inference_id"] for s in sent}
    assert_problem(api.get("/results", params={"limit": 0}, headers=mine), 422, "limit")
    assert_problem(api.get("/results", params={"limit": 101}, headers=mine), 422, "limit")
    engineer = as_role(token_for, "ml_engineer")
    assert_problem(api.get("/results", headers=engineer), 403, "role", "permission")
    reads = [
        e
        for e in whole_trail(api, auditor)
        if e["action"] == "result.read" and "own_recent" in e["details"]
    ]
    assert [e["details"]["own_recent"] for e in reads if e["actor"] == me] == [2, 3]


def test_a_path_outside_the_routes_is_a_404_problem(api: httpx.Client) -> None:
    response = api.get("/results/..%2F..%2Fetc")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "status", "field", "rule"),
    [
        (f"/results/{uuid.uuid4()}", 404, "inference_id", "exists"),
        ("/results/" + "a" * 65, 422, "inference_id", "string_pattern_mismatch"),
        ("/results/bad%20id", 422, "inference_id", "string_pattern_mismatch"),
    ],
)
def test_bad_result_ids(api: httpx.Client, path: str, status: int, field: str, rule: str) -> None:
    assert_problem(api.get(path), status, field, rule)
    assert_still_serving(api)


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        ({"limit": 0}, "limit", "greater_than_equal"),
        ({"limit": 1001}, "limit", "less_than_equal"),
        ({"limit": "many"}, "limit", "int_parsing"),
        ({"after_seq": -1}, "after_seq", "greater_than_equal"),
        ({"after_seq": "1e3"}, "after_seq", "int_parsing"),
        ({"after_seq": 2**63}, "after_seq", "less_than_equal"),
        ({"after_seq": "9" * 5000}, "after_seq", "int_parsing_size"),
    ],
)
def test_bad_audit_pages(
    api: httpx.Client, auditor: dict[str, str], params: dict, field: str, rule: str
) -> None:
    assert_problem(api.get("/audit", params=params, headers=auditor), 422, field, rule)
    assert_still_serving(api)


@pytest.mark.parametrize("path", ["/audit", "/audit/verify"])
def test_only_auditors_and_admins_read_the_trail(
    api: httpx.Client, token_for: TokenFactory, path: str
) -> None:
    for role in ("clinician", "ml_engineer"):
        assert_problem(api.get(path, headers=as_role(token_for, role)), 403, "role", "permission")
    assert api.get(path, headers=as_role(token_for, "admin")).status_code == 200


def test_pages_follow_one_another(api: httpx.Client, auditor: dict[str, str]) -> None:
    for seed in (75, 76, 77):
        assert api.post("/infer", json=infer_body(pixels(seed, 64, 64))).status_code == 200
    first = api.get("/audit", params={"limit": 2}, headers=auditor).json()
    assert [e["seq"] for e in first["entries"]] == [1, 2]
    assert first["next_after_seq"] == 2
    second = api.get("/audit", params={"after_seq": 2, "limit": 2}, headers=auditor).json()
    assert second["entries"][0]["seq"] == 3
    assert second["entries"][0]["prev_hash"] == first["entries"][1]["entry_hash"]


def test_failed_authentications_and_reads_are_audited(
    api: httpx.Client, auditor: dict[str, str], token_for: TokenFactory
) -> None:
    marker = f"/infer/{uuid.uuid4().hex}"
    refused = api.post(marker, headers={"Authorization": "Bearer not.a.jwt"})
    assert refused.status_code == 401
    sent = api.post("/infer", json=infer_body(pixels(78, 64, 64))).json()
    api.get(f"/results/{sent['inference_id']}", headers=auditor)

    # Failed authentications are counted and written in aggregate, once per window.
    deadline = time.monotonic() + 30
    while not [e for e in whole_trail(api, auditor) if marker in e["details"].get("paths", [])]:
        assert time.monotonic() < deadline, "the failed authentication was never audited"
        time.sleep(0.2)
    trail = whole_trail(api, auditor)
    (failure,) = [e for e in trail if marker in e["details"].get("paths", [])]
    assert (failure["action"], failure["actor"]) == ("auth.failure", "anonymous")
    assert failure["details"]["rule"] == "malformed"
    assert failure["details"]["count"] >= 1
    assert "not.a.jwt" not in str(failure)
    (read,) = [e for e in trail if e["action"] == "result.read" and
               e["details"].get("inference_id") == sent["inference_id"]]  # fmt: skip
    assert (read["actor"], read["role"]) == ("test-auditor", "auditor")
    assert any(e["action"] == "audit.read" and e["actor"] == "test-auditor" for e in trail)


def test_the_trail_verifies(api: httpx.Client, auditor: dict[str, str]) -> None:
    assert api.post("/infer", json=infer_body(pixels(79, 64, 64))).status_code == 200
    verification = api.get("/audit/verify", headers=auditor)
    assert verification.status_code == 200, verification.text
    body = verification.json()
    assert body["valid"] is True and body["first_bad_seq"] is None and body["entries"] >= 2
    assert len(body["head_hash"]) == 64


def test_no_route_changes_or_deletes_a_record(api: httpx.Client, auditor: dict[str, str]) -> None:
    """21 CFR 11.10(e): the API can add to the trail and read it, never rewrite it."""
    schema = api.get("/openapi.json").json()
    record_paths = [p for p in schema["paths"] if p.startswith(("/results", "/audit"))]
    assert record_paths and all(set(schema["paths"][p]) == {"get"} for p in record_paths)
    sent = api.post("/infer", json=infer_body(pixels(80, 64, 64))).json()
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in (f"/results/{sent['inference_id']}", "/audit"):
            assert api.request(method, path, headers=auditor).status_code == 405, (method, path)
    assert api.get(f"/results/{sent['inference_id']}", headers=auditor).status_code == 200
