"""The model registry over HTTP: register, list, promote, roll back; who may; every change
audited.

Against the in-process app and the Ray-served app, which shares one model store and one
database across the session: each test registers under its own model name and never
counts anyone else's versions or entries.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from onnx import TensorProto, helper

from tests.api.test_records import whole_trail
from tests.images import encode, infer_body, pixels
from tests.problems import assert_problem, assert_still_serving
from tests.unit.onnx_builders import model_bytes, tiny_classifier, two_input_model

SHAPE = ["N", 1, 48, 40]
"""One channel, a dynamic batch and a height unlike the width: read from the graph."""


def model_file(tag: str = "", **options: Any) -> bytes:
    """A valid 1-channel classifier (IR 10); ``tag`` makes its bytes differ."""
    metadata = {"medai.description": f"registry test {tag}", **options.pop("metadata", {})}
    return tiny_classifier(SHAPE, metadata=metadata, **options)


def two_d_input_model() -> bytes:
    """A (N, features) input: not an image."""
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["features"], ["probabilities"], axis=1)],
        "two_d",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 2])],
    )
    return model_bytes(graph)


def unique_name() -> str:
    return f"reg-{uuid.uuid4().hex[:8]}"


def register(
    api: httpx.Client,
    headers: dict[str, str],
    name: str,
    version: str,
    data: bytes | None = None,
    **fields: str,
) -> httpx.Response:
    files = {"file": ("model.onnx", model_file(version) if data is None else data)}
    form = {"name": name, "version": version, **fields}
    return api.post("/models", files=files, data=form, headers=headers)


def promote(
    api: httpx.Client, headers: dict[str, str], name: str, version: str, to: str
) -> httpx.Response:
    return api.post(f"/models/{name}/{version}/promote", json={"to": to}, headers=headers)


def roll_back(
    api: httpx.Client, headers: dict[str, str], name: str, to_version: str
) -> httpx.Response:
    return api.post(f"/models/{name}/rollback", json={"to_version": to_version}, headers=headers)


def statuses(api: httpx.Client, headers: dict[str, str], name: str) -> dict[str, str]:
    listed = api.get("/models", params={"name": name}, headers=headers)
    assert listed.status_code == 200, listed.text
    return {v["version"]: v["status"] for v in listed.json()}


def model_entries(api: httpx.Client, auditor: dict[str, str], name: str) -> list[dict[str, Any]]:
    """This model's registry entries, in seq order."""
    return [
        e
        for e in whole_trail(api, auditor)
        if e["object_type"] == "model" and (e["object_id"] or "").startswith(f"{name}:")
    ]


def test_a_registration_is_hashed_inspected_listed_and_audited(
    api: httpx.Client, engineer: dict[str, str], auditor: dict[str, str]
) -> None:
    name = unique_name()
    data = model_file("1", metadata={"medai.threshold": 0.7})
    response = register(
        api, engineer, name, "1.0.0", data, clinical_domain="radiology", fda_submission_id="K123"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["model_name"], body["version"], body["status"]) == (name, "1.0.0", "development")
    assert body["file_hash"] == hashlib.sha256(data).hexdigest()
    assert body["file_size_bytes"] == len(data)
    assert body["input_shape"] == [None, 1, 48, 40]
    assert body["output_shape"] == [None, 2]
    assert body["inference_latency_ms"] is not None and body["inference_latency_ms"] > 0
    assert body["confidence_threshold"] == 0.7
    assert (body["clinical_domain"], body["fda_submission_id"]) == ("radiology", "K123")
    assert body["iso_certification"] is None

    listed = api.get("/models", params={"name": name}, headers=engineer)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [body]

    (entry,) = model_entries(api, auditor, name)
    assert (entry["action"], entry["object_id"]) == ("model.register", f"{name}:1.0.0")
    assert (entry["actor"], entry["role"]) == ("test-ml_engineer", "ml_engineer")
    assert entry["model_version"] == f"{name}:1.0.0"
    assert entry["details"]["sha256"] == body["file_hash"]
    assert entry["details"]["status"] == "development"


def test_a_version_is_registered_once(
    api: httpx.Client, engineer: dict[str, str], auditor: dict[str, str]
) -> None:
    name = unique_name()
    first = register(api, engineer, name, "1", model_file("a"))
    assert first.status_code == 201, first.text
    # Different bytes under the same name:version: refused, the first left as it was.
    assert_problem(register(api, engineer, name, "1", model_file("b")), 409, "version", "unique")
    assert api.get("/models", params={"name": name}, headers=engineer).json() == [first.json()]
    assert [e["action"] for e in model_entries(api, auditor, name)] == ["model.register"]
    assert_still_serving(api)


def truncated() -> bytes:
    data = model_file("truncated")
    return data[: len(data) // 2]


HOSTILE_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "not-onnx": (lambda: b"this is not a model\n" * 8, "onnx"),
    "empty": (lambda: b"", "onnx"),
    "png": (lambda: encode(pixels(3, 64, 64), "PNG"), "onnx"),
    "truncated": (truncated, "onnx"),
    "ir-14": (lambda: model_file("ir14", ir_version=14), "onnx"),
    "two-inputs": (two_input_model, "model-input"),
    "2-d-input": (two_d_input_model, "model-input"),
    "threshold-over-1": (lambda: model_file(metadata={"medai.threshold": 1.5}), "model-metadata"),
    "threshold-text": (lambda: model_file(metadata={"medai.threshold": "high"}), "model-metadata"),
}


@pytest.mark.parametrize("case", HOSTILE_FILES)
def test_hostile_uploads_are_refused_naming_the_file(
    api: httpx.Client, engineer: dict[str, str], case: str
) -> None:
    make, rule = HOSTILE_FILES[case]
    name = unique_name()
    assert_problem(register(api, engineer, name, "1", make()), 422, "file", rule)
    assert statuses(api, engineer, name) == {}
    assert_still_serving(api)


@pytest.mark.parametrize(
    ("form", "field", "rule"),
    [
        ({"version": "1"}, "name", "missing"),
        ({"name": "", "version": "1"}, "name", "missing"),
        ({"name": "../x", "version": "1"}, "name", "string_pattern_mismatch"),
        ({"name": "a" * 65, "version": "1"}, "name", "string_pattern_mismatch"),
        ({"name": "-x", "version": "1"}, "name", "string_pattern_mismatch"),
        ({"name": "ok"}, "version", "missing"),
        ({"name": "ok", "version": ""}, "version", "missing"),
        ({"name": "ok", "version": "../x"}, "version", "string_pattern_mismatch"),
        ({"name": "ok", "version": "1" * 65}, "version", "string_pattern_mismatch"),
        (
            {"name": "ok", "version": "1", "clinical_domain": "<script>"},
            "clinical_domain",
            "string_pattern_mismatch",
        ),
    ],
)
def test_bad_registration_fields(
    api: httpx.Client, engineer: dict[str, str], form: dict[str, str], field: str, rule: str
) -> None:
    files = {"file": ("model.onnx", model_file("fields"))}
    response = api.post("/models", files=files, data=form, headers=engineer)
    assert_problem(response, 422, field, rule)
    assert_still_serving(api)


def test_a_registration_without_a_file(api: httpx.Client, engineer: dict[str, str]) -> None:
    name = unique_name()
    # httpx sends data alone URL-encoded; a file part is what makes it multipart.
    response = api.post(
        "/models",
        files={"other": ("x.txt", b"x")},
        data={"name": name, "version": "1"},
        headers=engineer,
    )
    assert_problem(response, 422, "file", "missing")
    assert statuses(api, engineer, name) == {}
    assert_still_serving(api)


def test_who_may_manage_and_list_models(
    api: httpx.Client,
    engineer: dict[str, str],
    admin: dict[str, str],
    auditor: dict[str, str],
    clinician: dict[str, str],
) -> None:
    name = unique_name()
    for refused in (clinician, auditor):
        assert_problem(register(api, refused, name, "1"), 403, "role", "permission")
    assert_problem(api.get("/models", headers=clinician), 403, "role", "permission")
    assert statuses(api, engineer, name) == {}  # nothing was registered by either

    assert register(api, admin, name, "1").status_code == 201
    assert register(api, engineer, name, "2").status_code == 201
    listed = api.get("/models", params={"name": name}, headers=auditor)
    assert listed.status_code == 200, listed.text
    assert [v["version"] for v in listed.json()] == ["1", "2"]
    assert api.get("/models", headers=auditor).status_code == 200

    for refused in (clinician, auditor):
        assert_problem(promote(api, refused, name, "1", "validation"), 403, "role", "permission")
        assert_problem(roll_back(api, refused, name, "1"), 403, "role", "permission")
    assert statuses(api, engineer, name) == {"1": "development", "2": "development"}
    assert promote(api, admin, name, "1", "validation").status_code == 200
    assert promote(api, engineer, name, "2", "retired").status_code == 200


def test_the_lifecycle_with_a_promotion_and_a_rollback(
    api: httpx.Client,
    engineer: dict[str, str],
    admin: dict[str, str],
    auditor: dict[str, str],
) -> None:
    name = unique_name()
    assert register(api, engineer, name, "1").status_code == 201
    for to in ("validation", "production"):
        moved = promote(api, engineer, name, "1", to)
        assert moved.status_code == 200, moved.text
        assert {v["version"]: v["status"] for v in moved.json()} == {"1": to}

    assert register(api, engineer, name, "2").status_code == 201
    assert promote(api, engineer, name, "2", "validation").status_code == 200
    replaced = promote(api, engineer, name, "2", "production")
    assert replaced.status_code == 200, replaced.text
    assert {v["version"]: v["status"] for v in replaced.json()} == {
        "1": "retired",
        "2": "production",
    }

    rolled = roll_back(api, admin, name, "1")
    assert rolled.status_code == 200, rolled.text
    after = {"1": "production", "2": "retired"}
    assert {v["version"]: v["status"] for v in rolled.json()} == after
    assert statuses(api, auditor, name) == after

    # One entry per changed version, the retirement before the version that replaces it.
    entries = model_entries(api, auditor, name)
    assert [(e["action"], e["object_id"], e["details"]["status"]) for e in entries] == [
        ("model.register", f"{name}:1", "development"),
        ("model.promote", f"{name}:1", "validation"),
        ("model.promote", f"{name}:1", "production"),
        ("model.register", f"{name}:2", "development"),
        ("model.promote", f"{name}:2", "validation"),
        ("model.promote", f"{name}:1", "retired"),
        ("model.promote", f"{name}:2", "production"),
        ("model.rollback", f"{name}:2", "retired"),
        ("model.rollback", f"{name}:1", "production"),
    ]
    assert [e["details"]["to"] for e in entries[5:7]] == ["production", "production"]
    assert [e["details"]["to_version"] for e in entries[7:]] == ["1", "1"]
    assert {(e["actor"], e["role"]) for e in entries[7:]} == {("test-admin", "admin")}


def test_illegal_moves_are_conflicts_and_change_nothing(
    api: httpx.Client, engineer: dict[str, str], auditor: dict[str, str]
) -> None:
    name = unique_name()
    assert register(api, engineer, name, "1").status_code == 201
    assert register(api, engineer, name, "2").status_code == 201

    assert_problem(promote(api, engineer, name, "1", "production"), 409, "to", "transition")
    assert_problem(roll_back(api, engineer, name, "1"), 409, "to_version", "transition")
    assert promote(api, engineer, name, "2", "retired").status_code == 200
    assert_problem(promote(api, engineer, name, "2", "validation"), 409, "to", "transition")
    assert_problem(promote(api, engineer, name, "2", "development"), 409, "to", "transition")

    assert statuses(api, engineer, name) == {"1": "development", "2": "retired"}
    entries = model_entries(api, auditor, name)
    assert [(e["action"], e["details"]["status"]) for e in entries] == [
        ("model.register", "development"),
        ("model.register", "development"),
        ("model.promote", "retired"),
    ]
    assert_still_serving(api)


def test_unknown_versions_and_statuses(api: httpx.Client, engineer: dict[str, str]) -> None:
    name = unique_name()
    assert register(api, engineer, name, "1").status_code == 201

    assert_problem(promote(api, engineer, name, "9", "validation"), 404, "model", "registered")
    other = unique_name()
    assert_problem(promote(api, engineer, other, "1", "validation"), 404, "model", "registered")
    assert_problem(roll_back(api, engineer, name, "9"), 404, "model", "registered")
    assert_problem(promote(api, engineer, name, "1", "approved"), 422, "to", "enum")
    assert_problem(roll_back(api, engineer, name, "../1"), 422, "to_version")
    assert statuses(api, engineer, name) == {"1": "development"}
    assert_still_serving(api)


def test_a_refused_registration_does_not_fail_concurrent_inferences(
    api: httpx.Client, engineer: dict[str, str]
) -> None:
    name = unique_name()
    assert register(api, engineer, name, "1").status_code == 201

    def infer(seed: int) -> httpx.Response:
        return api.post("/infer", json=infer_body(pixels(seed, 64, 64)))

    with ThreadPoolExecutor(max_workers=9) as pool:
        duplicate = pool.submit(register, api, engineer, name, "1", model_file("again"))
        inferences = [pool.submit(infer, 90 + i) for i in range(8)]
        answers = [f.result() for f in inferences]
        refused = duplicate.result()

    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert_problem(refused, 409, "version", "unique")
    assert statuses(api, engineer, name) == {"1": "development"}
