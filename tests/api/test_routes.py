"""A/B routes over HTTP: weights within 3 sigma over 2000 requests, sticky patients,
shadows stored and audited but never returned, live and audited changes, per-arm stats,
who may, and hostile bodies.

Against the in-process app and the Ray-served app. Each test routes an endpoint of its
own between versions of the served chest model it registers itself, and deletes its
route after, so the model's production version (other tests' answers) never changes.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_app.catalog.store import ModelStore
from tests.api.test_records import as_role, whole_trail
from tests.conftest import TokenFactory
from tests.images import infer_body, pixels
from tests.problems import assert_problem, assert_still_serving
from tests.serve.test_hot_swap import MODEL, variant

REQUESTS = 2000
LIVE_WITHIN_S = 30.0
"""A served change reaches every preprocessor within ``registry.poll_interval_s`` (1 s)."""


@pytest.fixture
def versions(
    api: httpx.Client, engineer: dict[str, str], model_store: Path
) -> Callable[..., list[str]]:
    """``versions(n, status)``: ``n`` new versions of the chest model, moved to ``status``."""

    def make(n: int, status: str = "validation") -> list[str]:
        made = []
        for i in range(n):
            version = f"ab-{uuid.uuid4().hex[:8]}"
            data = variant(model_store, threshold=0.3 + 0.05 * i, tag=version)
            files = {"file": ("model.onnx", data)}
            form = {"name": MODEL, "version": version}
            assert api.post("/models", files=files, data=form, headers=engineer).status_code == 201
            if status != "development":
                moved = api.post(
                    f"/models/{MODEL}/{version}/promote", json={"to": status}, headers=engineer
                )
                assert moved.status_code == 200, moved.text
            made.append(f"{MODEL}:{version}")
        return made

    return make


@pytest.fixture
def endpoint(api: httpx.Client, engineer: dict[str, str]) -> Iterator[str]:
    """An endpoint of this test's own; its route is deleted after."""
    name = f"ab-{uuid.uuid4().hex[:8]}"
    yield name
    api.delete(f"/routes/{name}", headers=engineer)


def put_route(
    api: httpx.Client, headers: dict[str, str], endpoint: str, arms: dict[str, float], **extra: Any
) -> httpx.Response:
    body = {"arms": [{"model": m, "weight": w} for m, w in arms.items()], **extra}
    return api.put(f"/routes/{endpoint}", json=body, headers=headers)


def infer(api: httpx.Client, model: str, seed: int, **extra: Any) -> httpx.Response:
    return api.post("/infer", json=infer_body(pixels(seed, 64, 64), model=model, **extra))


def until_served(api: httpx.Client, check: Callable[[httpx.Response], bool], *args: Any) -> None:
    """Wait for a change to reach every preprocessor (at once in process)."""
    deadline = time.monotonic() + LIVE_WITHIN_S
    while True:
        # Several answers in a row: a pool of preprocessors follows the registry apart.
        if all(check(infer(api, *args, seed=i)) for i in range(6)):
            return
        assert time.monotonic() < deadline, f"the change did not take effect in {LIVE_WITHIN_S}s"
        time.sleep(0.3)


def shadow_copies(
    api: httpx.Client, auditor: dict[str, str], head: int, answers: set[str]
) -> list[dict[str, Any]]:
    """The audit entries, after the first ``head``, of copies of ``answers`` (once all
    are in, or after ``LIVE_WITHIN_S``): the copies run after the answers."""
    deadline = time.monotonic() + LIVE_WITHIN_S
    while True:
        copies = [
            e
            for e in whole_trail(api, auditor)[head:]
            if e["action"] == "inference" and e["details"].get("shadow_of") in answers
        ]
        if len(copies) >= len(answers) or time.monotonic() > deadline:
            return copies
        time.sleep(0.3)


def many(api: httpx.Client, calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run ``calls`` concurrently over HTTP; one at a time in process (TestClient)."""
    if isinstance(api, TestClient):
        return [call() for call in calls]
    with ThreadPoolExecutor(12) as pool:
        return list(pool.map(lambda call: call(), calls))


def assert_within_3_sigma(counts: Counter[str], weights: dict[str, float]) -> None:
    n, total = sum(counts.values()), sum(weights.values())
    for model, weight in weights.items():
        p = weight / total
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[model] - n * p) <= 3 * sigma, (model, counts, n * p, sigma)


def test_weights_hold_over_2000_requests_and_each_answer_names_its_arm(
    request: pytest.FixtureRequest,
    api: httpx.Client,
    engineer: dict[str, str],
    auditor: dict[str, str],
    versions: Callable[..., list[str]],
    endpoint: str,
) -> None:
    a, b = versions(2)
    weights = {a: 3.0, b: 1.0}
    assert put_route(api, engineer, endpoint, weights).status_code == 200
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] in weights, endpoint)
    before = api.get(f"/routes/{endpoint}/stats", headers=auditor).json()["results"]
    if isinstance(api, TestClient):
        # NOTE: seeded, so the in-process counts are the same on every run; the served
        # preprocessors draw from their own generators, within 3 sigma but not seeded.
        request.getfixturevalue("inprocess_rng").seed(20261201)

    answers = many(api, [lambda s=s: infer(api, endpoint, s) for s in range(REQUESTS)])

    assert {r.status_code for r in answers} == {200}
    bodies = [r.json() for r in answers]
    assert all(b["endpoint"] == endpoint for b in bodies)
    assert all(b["arm"] == f"{b['model_name']}:{b['model_version']}" for b in bodies)
    counts = Counter(b["arm"] for b in bodies)
    assert_within_3_sigma(counts, weights)

    stats = api.get(f"/routes/{endpoint}/stats", headers=auditor)
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["results"] == before + REQUESTS and body["shadows"] == []
    arms = {arm["model"]: arm for arm in body["arms"]}
    assert set(arms) == set(weights)
    assert sum(arm["count"] for arm in arms.values()) == before + REQUESTS
    assert all(arms[m]["count"] >= counts[m] for m in weights)
    for arm in arms.values():
        latency = arm["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
        assert 0 <= arm["positive_rate"] <= 1


def test_a_sticky_route_keeps_each_patient_on_one_arm(
    api: httpx.Client, engineer: dict[str, str], versions: Callable[..., list[str]], endpoint: str
) -> None:
    a, b = versions(2)
    sticky = put_route(api, engineer, endpoint, {a: 1, b: 1}, sticky_key="patient_id")
    assert sticky.status_code == 200 and sticky.json()["sticky_key"] == "patient_id"
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] in (a, b), endpoint)

    patients = [f"MRN-AB-{i:04d}" for i in range(40)]
    calls = [
        lambda p=p, s=s: infer(api, endpoint, s, patient_id=p) for s in range(4) for p in patients
    ]
    answers = many(api, calls)

    arms: dict[str, set[str]] = {}
    for call, answer in zip(calls, answers, strict=True):
        assert answer.status_code == 200, answer.text
        arms.setdefault(call.__defaults__[0], set()).add(answer.json()["arm"])  # type: ignore[index]
    assert all(len(seen) == 1 for seen in arms.values()), arms
    assert set().union(*arms.values()) == {a, b}


def test_shadow_copies_are_stored_and_audited_but_never_returned(
    api: httpx.Client,
    engineer: dict[str, str],
    auditor: dict[str, str],
    versions: Callable[..., list[str]],
    endpoint: str,
) -> None:
    (arm,) = versions(1)
    (shadow,) = versions(1, "development")  # a shadow answers no one: it may be unvalidated
    routed = put_route(api, engineer, endpoint, {arm: 1}, shadow=[shadow])
    assert routed.status_code == 200, routed.text
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] == arm, endpoint)
    head = len(whole_trail(api, auditor))

    answers = [infer(api, endpoint, seed) for seed in range(20)]

    assert {(r.status_code, r.json()["arm"]) for r in answers} == {(200, arm)}
    assert all(shadow.split(":")[1] not in r.text for r in answers)
    ids = {r.json()["inference_id"] for r in answers}
    copies = shadow_copies(api, auditor, head, ids)
    assert {e["details"]["shadow_of"] for e in copies} == ids
    assert {(e["model_version"], e["details"]["arm"]) for e in copies} == {(shadow, shadow)}
    assert all(e["details"]["endpoint"] == endpoint for e in copies)
    stored = api.get(f"/results/{copies[0]['object_id']}", headers=auditor).json()
    assert (stored["arm"], stored["shadow_of"]) == (shadow, copies[0]["details"]["shadow_of"])

    stats = api.get(f"/routes/{endpoint}/stats", headers=auditor).json()
    (copies_stats,) = stats["shadows"]
    assert copies_stats["model"] == shadow
    assert copies_stats["count"] >= 20  # and the copies of the warm-up requests
    # The same network with the same threshold: every copy agrees with its answer.
    assert copies_stats["agreement"] == 1.0
    assert [a["model"] for a in stats["arms"]] == [arm]


def test_a_batch_is_routed_image_by_image_with_its_shadow_copies(
    api: httpx.Client,
    engineer: dict[str, str],
    auditor: dict[str, str],
    versions: Callable[..., list[str]],
    endpoint: str,
) -> None:
    a, b = versions(2)
    (shadow,) = versions(1, "development")
    assert put_route(api, engineer, endpoint, {a: 1, b: 1}, shadow=[shadow]).status_code == 200
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] in (a, b), endpoint)
    head = len(whole_trail(api, auditor))
    images = [infer_body(pixels(seed, 64, 64), model=endpoint) for seed in range(40)]
    images.append(infer_body(pixels(1, 64, 64), model=f"{endpoint}-absent"))

    batch = api.post("/infer/batch", json={"images": images})

    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert (body["successful"], body["failed"]) == (40, 1)
    arms = Counter(item["result"]["arm"] for item in body["results"][:40])
    assert set(arms) == {a, b}  # each image drew its own arm: both, with odds 1 - 2**-39
    answered = {item["result"]["inference_id"] for item in body["results"][:40]}
    copies = shadow_copies(api, auditor, head, answered)
    assert {e["details"]["shadow_of"] for e in copies} == answered
    assert {e["details"]["batch_id"] for e in copies} == {body["batch_id"]}
    assert {e["model_version"] for e in copies} == {shadow}


def test_route_changes_are_live_read_back_and_audited(
    api: httpx.Client,
    engineer: dict[str, str],
    auditor: dict[str, str],
    versions: Callable[..., list[str]],
    endpoint: str,
) -> None:
    a, b = versions(2)
    head = len(whole_trail(api, auditor))
    first = put_route(api, engineer, endpoint, {a: 1})
    assert first.status_code == 200, first.text
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] == a, endpoint)

    second = put_route(api, engineer, endpoint, {b: 1})
    assert second.status_code == 200
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] == b, endpoint)
    read = api.get(f"/routes/{endpoint}", headers=auditor)
    assert read.status_code == 200
    assert read.json()["arms"] == [{"model": b, "weight": 1.0}]
    assert read.json()["updated_by"] == "test-ml_engineer"
    listed = api.get("/routes", headers=auditor).json()
    assert [r["arms"] for r in listed if r["endpoint"] == endpoint] == [read.json()["arms"]]
    # Since an answer of the second route: its arm alone. (Between a change and the
    # preprocessors' next poll, answers may still come from the previous route.)
    answer = infer(api, endpoint, 99).json()
    stored = api.get(f"/results/{answer['inference_id']}", headers=auditor).json()
    since = {"since": stored["created_at"]}
    current = api.get(f"/routes/{endpoint}/stats", params=since, headers=auditor).json()
    assert [a["model"] for a in current["arms"]] == [b]
    everything = api.get(f"/routes/{endpoint}/stats", headers=auditor).json()
    assert [a["model"] for a in everything["arms"]] == sorted([a, b])

    deleted = api.delete(f"/routes/{endpoint}", headers=engineer)
    assert deleted.status_code == 204, deleted.text
    assert_problem(api.get(f"/routes/{endpoint}", headers=auditor), 404, "endpoint", "routed")
    until_served(api, lambda r: r.status_code == 404, endpoint)
    assert_problem(infer(api, endpoint, 1), 404, "model", "served")

    changes = [e for e in whole_trail(api, auditor)[head:] if e["object_id"] == endpoint]
    assert [(e["action"], e["actor"]) for e in changes] == [
        ("route.change", "test-ml_engineer")
    ] * 3
    assert [e["details"].get("arms") for e in changes] == [
        [{"model": a, "weight": 1.0}],
        [{"model": b, "weight": 1.0}],
        None,
    ]
    assert changes[2]["details"] == {"deleted": True}


def test_versions_a_route_may_not_name_are_refused(
    api: httpx.Client,
    engineer: dict[str, str],
    versions: Callable[..., list[str]],
    endpoint: str,
    model_store: Path,
) -> None:
    (validated,) = versions(1)
    (development,) = versions(1, "development")
    (retired,) = versions(1, "retired")
    cases = [
        ({f"{MODEL}:no-such-version": 1}, 422, "arms.0.model", "registered"),
        ({"derm-demo:1.0.0": 1, "elsewhere:1": 1}, 422, "arms.1.model", "served"),
        ({validated: 1, development: 1}, 409, "arms.1.model", "status"),
        ({retired: 1}, 409, "arms.0.model", "status"),
    ]
    for arms, status, field, rule in cases:
        assert_problem(put_route(api, engineer, endpoint, arms), status, field, rule)
    shadow_retired = put_route(api, engineer, endpoint, {validated: 1}, shadow=[retired])
    assert_problem(shadow_retired, 409, "shadow.0", "status")
    assert api.get(f"/routes/{endpoint}", headers=engineer).status_code == 404

    many_arms = {ref: 1 for ref in versions(4)}  # and production: 5 versions of the model
    too_many = put_route(api, engineer, endpoint, many_arms)
    assert_problem(too_many, 409, "arms", "max-loaded-versions")

    (tampered,) = versions(1)
    store = ModelStore(model_store)
    blob = store.blob_path(store.resolve(*tampered.split(":")).sha256)
    blob.write_bytes(blob.read_bytes()[:-16] + b"\x00" * 16)
    assert_problem(put_route(api, engineer, endpoint, {tampered: 1}), 409, "model", "integrity")
    assert api.get(f"/routes/{endpoint}", headers=engineer).status_code == 404
    assert_still_serving(api)


def test_an_arm_cannot_be_retired_while_routed(
    api: httpx.Client, engineer: dict[str, str], versions: Callable[..., list[str]], endpoint: str
) -> None:
    (arm,) = versions(1)
    assert put_route(api, engineer, endpoint, {arm: 1}).status_code == 200
    version = arm.split(":")[1]
    retire = api.post(
        f"/models/{MODEL}/{version}/promote", json={"to": "retired"}, headers=engineer
    )
    assert_problem(retire, 409, "model", "routed")

    assert api.delete(f"/routes/{endpoint}", headers=engineer).status_code == 204
    retire = api.post(
        f"/models/{MODEL}/{version}/promote", json={"to": "retired"}, headers=engineer
    )
    assert retire.status_code == 200, retire.text


def test_a_shadow_version_answers_no_pin_and_stays_while_routed(
    api: httpx.Client, engineer: dict[str, str], versions: Callable[..., list[str]], endpoint: str
) -> None:
    """Finding 6: a development version that is only a shadow is unvalidated; a clinician
    pinning it gets the same 404 as for a version that does not exist, never its answer."""
    (arm,) = versions(1)
    (shadow,) = versions(1, "development")
    assert put_route(api, engineer, endpoint, {arm: 1}, shadow=[shadow]).status_code == 200
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] == arm, endpoint)

    pinned = infer(api, shadow, seed=7)  # as the clinician
    assert_problem(pinned, 404, "model", "served")
    assert "outputs" not in pinned.text
    unknown = infer(api, f"{MODEL}:no-such-version", seed=7)
    assert pinned.json()["detail"] == unknown.json()["detail"].replace(
        "no-such-version", shadow.split(":")[1]
    )
    answered = infer(api, arm, seed=7)  # an arm answers clinicians: it may be pinned
    assert (answered.status_code, answered.json()["model_version"]) == (200, arm.split(":")[1])

    version = shadow.split(":")[1]
    retire = api.post(
        f"/models/{MODEL}/{version}/promote", json={"to": "retired"}, headers=engineer
    )
    assert_problem(retire, 409, "model", "routed")
    assert "shadow" in retire.json()["detail"]


def test_a_404_for_a_pinned_version_names_no_other_version(
    api: httpx.Client, engineer: dict[str, str]
) -> None:
    listed = api.get("/models", params={"name": MODEL}, headers=engineer).json()
    (production,) = [v["version"] for v in listed if v["status"] == "production"]
    refused = infer(api, f"{MODEL}:0.0.0-absent", seed=8)
    assert_problem(refused, 404, "model", "served")
    assert production not in refused.json()["detail"]


def test_who_may_route(
    api: httpx.Client,
    engineer: dict[str, str],
    auditor: dict[str, str],
    clinician: dict[str, str],
    token_for: TokenFactory,
    versions: Callable[..., list[str]],
    endpoint: str,
) -> None:
    (arm,) = versions(1)
    for refused in (clinician, auditor):
        assert_problem(put_route(api, refused, endpoint, {arm: 1}), 403, "role", "permission")
    assert_problem(api.get("/routes", headers=clinician), 403, "role", "permission")
    admin = as_role(token_for, "admin")
    assert put_route(api, admin, endpoint, {arm: 1}).status_code == 200
    assert api.get(f"/routes/{endpoint}", headers=auditor).status_code == 200
    assert api.get(f"/routes/{endpoint}/stats", headers=auditor).status_code == 200
    assert_problem(api.delete(f"/routes/{endpoint}", headers=auditor), 403, "role", "permission")
    anonymous = api.get(f"/routes/{endpoint}", headers={"Authorization": ""})
    assert anonymous.status_code == 401


ARM = {"model": f"{MODEL}:1.0.0", "weight": 1}


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({}, "arms", "missing"),
        ({"arms": []}, "arms", "too_short"),
        ({"arms": [{**ARM, "weight": 0}]}, "arms.0.weight", "greater_than"),
        ({"arms": [{**ARM, "weight": -1}]}, "arms.0.weight", "greater_than"),
        ({"arms": [{**ARM, "weight": 1e7}]}, "arms.0.weight", "less_than_equal"),
        ({"arms": [{**ARM, "weight": "1"}]}, "arms.0.weight", "float_type"),
        ({"arms": [{"model": MODEL, "weight": 1}]}, "arms.0.model", "string_pattern_mismatch"),
        (
            {"arms": [{"model": "a:1;drop", "weight": 1}]},
            "arms.0.model",
            "string_pattern_mismatch",
        ),
        ({"arms": [{**ARM, "extra": 1}]}, "arms.0.extra", "extra_forbidden"),
        ({"arms": [ARM] * 11}, "arms", "too_long"),
        ({"arms": [ARM, ARM]}, "body", "value_error"),
        ({"arms": [ARM], "shadow": [ARM["model"]]}, "body", "value_error"),
        ({"arms": [ARM], "shadow": ["not pinned"]}, "body", "value_error"),
        ({"arms": [ARM], "sticky_key": "mrn"}, "sticky_key", "literal_error"),
        ({"arms": [ARM], "endpoint": "x"}, "endpoint", "extra_forbidden"),
    ],
)
def test_hostile_route_bodies_are_refused_naming_the_field(
    api: httpx.Client, engineer: dict[str, str], endpoint: str, body: Any, field: str, rule: str
) -> None:
    response = api.put(f"/routes/{endpoint}", json=body, headers=engineer)
    assert_problem(response, 422, field, rule)
    assert api.get(f"/routes/{endpoint}", headers=engineer).status_code == 404


@pytest.mark.parametrize(
    ("content", "status", "rule"),
    [
        (b'{"arms": [{"model": "a:1", "weight": NaN}]}', 422, "finite_number"),
        (b'{"arms": [{"model": "a:1", "weight": 1e999}]}', 422, "finite_number"),
        (b"{not json", 400, "json"),
        (b'[{"model": "a:1", "weight": 1}]', 400, "json"),
        (b"", 422, "missing"),
    ],
)
def test_unparseable_route_bodies_are_client_errors(
    api: httpx.Client, engineer: dict[str, str], endpoint: str, content: bytes, status: int,
    rule: str,
) -> None:  # fmt: skip
    headers = {**engineer, "Content-Type": "application/json"}
    response = api.put(f"/routes/{endpoint}", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert rule in {e["rule"] for e in response.json()["errors"]}, response.text


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/routes/bad%20name", {}, 422, "endpoint"),
        ("/routes/" + "x" * 65, {}, 422, "endpoint"),
        ("/routes/ab-never-routed", {}, 404, "endpoint"),
        ("/routes/ab-never-routed/stats", {}, 404, "endpoint"),
        ("/routes/ab-never-routed/stats", {"limit": 0}, 422, "limit"),
        ("/routes/ab-never-routed/stats", {"limit": 100_001}, 422, "limit"),
        ("/routes/ab-never-routed/stats", {"since": "yesterday"}, 422, "since"),
        ("/routes/ab-never-routed/stats", {"since": "2026-11-30T10:00:00"}, 422, "since"),
    ],
)
def test_bad_route_reads(
    api: httpx.Client,
    auditor: dict[str, str],
    path: str,
    params: dict[str, Any],
    status: int,
    field: str,
) -> None:
    assert_problem(api.get(path, params=params, headers=auditor), status, field)


def test_a_new_endpoint_answers_its_first_requests(
    api: httpx.Client, engineer: dict[str, str], versions: Callable[..., list[str]], endpoint: str
) -> None:
    """A preprocessor that has not polled the registry since the route was set asks it when
    a request names the new endpoint, rather than answering 404 until its next poll (and
    another replica, which has polled, answering 200 meanwhile)."""
    a, b = versions(2)
    assert put_route(api, engineer, endpoint, {a: 1, b: 1}).status_code == 200
    answers = [infer(api, endpoint, seed=i) for i in range(8)]
    assert [r.status_code for r in answers] == [200] * 8, answers[0].text
    assert {r.json()["arm"] for r in answers} <= {a, b}


def test_a_v2_request_to_an_endpoint_is_routed_and_stored_with_its_arm(
    api: httpx.Client, engineer: dict[str, str], versions: Callable[..., list[str]], endpoint: str
) -> None:
    """``/v2/models/{endpoint}/infer`` routes as ``/infer`` does: sticky by the request's
    ``patient_id`` parameter, each row stored under the endpoint and its arm."""
    a, b = versions(2)
    put_route(api, engineer, endpoint, {a: 1, b: 1}, sticky_key="patient_id")
    rows = np.zeros((3, 1, 256, 256), np.float32)

    def v2(patient: str) -> httpx.Response:
        body = {
            "inputs": [{"name": "pixel_values", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}],
            "parameters": {"patient_id": patient},
        }  # fmt: skip
        return api.post(f"/v2/models/{endpoint}/infer", json=body)

    deadline = time.monotonic() + LIVE_WITHIN_S  # the v2 path follows the plan on its own
    while (first := v2("MRN-V2-0000")).status_code != 200:
        assert time.monotonic() < deadline, first.text
        time.sleep(0.3)
    arms = set()
    for i in range(24):
        response = v2(f"MRN-V2-{i:04d}")
        if response.status_code == 503:  # back-pressure says retry; this test is routing
            time.sleep(float(response.headers.get("Retry-After", "1")))
            response = v2(f"MRN-V2-{i:04d}")
        assert response.status_code == 200, response.text
        answer = response.json()
        assert f"{MODEL}:{answer['model_version']}" in (a, b)
        ids = next(o["data"] for o in answer["outputs"] if o["name"] == "inference_id")
        stored = [api.get(f"/results/{inference_id}").json() for inference_id in ids]
        assert {(s["endpoint"], s["arm"]) for s in stored} == {
            (endpoint, f"{MODEL}:{answer['model_version']}")
        }
        arms.add(answer["model_version"])
    assert len(arms) == 2
