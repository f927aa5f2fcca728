"""Model uploads are the uploader's code: finding 1 (a file that makes the server read its
own files) and the low finding on graphs run with no time or memory limit.

The upload tests run against the in-process app and the Ray-served app; the tests of a
file stored before the fix, and of limits, build an in-process app of their own.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.auth.credentials import Credentials
from serve_app.catalog.status import ModelStatus
from serve_app.catalog.store import ModelStore
from serve_app.http.app import create_local_app
from serve_app.registry.registry import _record
from serve_app.settings import Settings
from tests.api.test_registry import promote, register, unique_name
from tests.api.test_routes import put_route
from tests.images import infer_body, pixels
from tests.local_app import local_app, on_app, own_database
from tests.problems import assert_problem, assert_still_serving
from tests.serve.test_hot_swap import MODEL
from tests.unit.onnx_builders import leaking_classifier, leaking_spec, model_bytes

SECRET = b"not-a-real-jwt-secret-but-close-" * 8


@pytest.fixture
def secret_below_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A secret-like file below the working directory of this (in-process) server, as
    ``data/dev-secrets/medai_jwt_secret`` is under ``make serve``."""
    secrets = tmp_path / "cwd" / "data" / "dev-secrets"
    secrets.mkdir(parents=True)
    (secrets / "medai_jwt_secret").write_bytes(SECRET)
    monkeypatch.chdir(tmp_path / "cwd")
    return "data/dev-secrets/medai_jwt_secret"


def test_an_upload_with_external_data_is_refused(
    api: httpx.Client, engineer: dict[str, str], secret_below_cwd: str
) -> None:
    """The reviewer's upload: before the fix it registered (201), and once it served its
    outputs were the secret's bytes."""
    name = unique_name()
    refused = register(api, engineer, name, "1.0.0", leaking_classifier(secret_below_cwd))
    assert_problem(refused, 422, "file", "external-data")
    assert secret_below_cwd not in refused.text
    listed = api.get("/models", params={"name": name}, headers=engineer)
    assert listed.json() == []


def expand_bomb(gib: int) -> bytes:
    """A valid classifier whose run on a zero input first expands its 1x1 image to
    ``gib`` GiB of float32: what an upload that 'allocates a lot' looks like."""
    side = int((gib * 2**30 / 4 / 2) ** 0.5)
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 2, side, side])
    graph = helper.make_graph(
        [
            helper.make_node("Expand", ["image", "shape"], ["big"]),
            helper.make_node("ReduceMean", ["big"], ["scores"], axes=[2, 3], keepdims=0),
        ],
        "expand_bomb",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 1, 1])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
        [shape],
    )
    return model_bytes(graph)


def loop_bomb() -> bytes:
    """A valid classifier that loops 10^12 times on its zero input."""
    io = helper.make_tensor_value_info
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["x_in", "x_in"], ["x_out"]),
        ],
        "body",
        [
            io("i", TensorProto.INT64, []),
            io("cond_in", TensorProto.BOOL, []),
            io("x_in", TensorProto.FLOAT, [1, 1, 1, 1]),
        ],
        [io("cond_out", TensorProto.BOOL, []), io("x_out", TensorProto.FLOAT, [1, 1, 1, 1])],
    )
    constants = [
        helper.make_tensor("trip", TensorProto.INT64, [], [10**12]),
        helper.make_tensor("cond", TensorProto.BOOL, [], [True]),
        helper.make_tensor("shape", TensorProto.INT64, [2], [1, 1]),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Loop", ["trip", "cond", "image"], ["looped"], body=body),
            helper.make_node("Reshape", ["looped", "shape"], ["column"]),
            helper.make_node("Concat", ["column", "column"], ["scores"], axis=1),
        ],
        "loop_bomb",
        [io("image", TensorProto.FLOAT, [1, 1, 1, 1])],
        [io("scores", TensorProto.FLOAT, [1, 2])],
        constants,
    )
    return model_bytes(graph)


@pytest.fixture(scope="module")
def limited(
    settings: Settings, credentials: Credentials, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """An in-process server whose inspections get 1 GiB and 3 CPU seconds. NOTE: the wall
    clock's limit is far above the CPU's, so a loaded machine (CI's two cores) cannot make
    the CPU case end on the clock instead."""
    limits = {
        "model_inspect_memory_bytes": 2**30,
        "model_inspect_cpu_s": 3,
        "model_inspect_timeout_s": 120,
    }
    narrow = settings.model_copy(update={"limits": settings.limits.model_copy(update=limits)})
    with TestClient(local_app(narrow, credentials, tmp_path_factory.mktemp("narrow"))) as client:
        yield client


@pytest.mark.parametrize(
    ("upload", "rule"),
    [(lambda: expand_bomb(2), "memory-limit"), (loop_bomb, "cpu-limit")],
    ids=["memory", "cpu"],
)
def test_an_upload_over_a_limit_is_a_422_and_the_registry_keeps_working(
    limited: TestClient, engineer: dict[str, str], upload, rule: str
) -> None:
    """Before the fix the memory one took 2 GiB of the registry's own process and the
    loop one held it for ever (registration ran the graph in process, unlimited)."""
    name = unique_name()
    assert_problem(register(limited, engineer, name, "1.0.0", upload()), 422, "file", rule)
    registered = register(limited, engineer, name, "1.0.1")
    assert registered.status_code == 201, registered.text


def test_an_upload_over_the_wall_clock_limit_is_a_422(
    settings: Settings, credentials: Credentials, engineer: dict[str, str], tmp_path: Path
) -> None:
    limits = {"model_inspect_cpu_s": 60, "model_inspect_timeout_s": 3}
    slow = settings.model_copy(update={"limits": settings.limits.model_copy(update=limits)})
    with TestClient(local_app(slow, credentials, tmp_path)) as api:
        refused = register(api, engineer, unique_name(), "1.0.0", loop_bomb())
    assert_problem(refused, 422, "file", "time-limit")


@pytest.fixture
def before_the_fix(
    settings: Settings, credentials: Credentials, tmp_path: Path, secret_below_cwd: str
) -> Iterator[tuple[TestClient, DatabaseTrail, str]]:
    """An in-process server over a copy of the model store into which a file with external
    data was registered before uploads were checked: stored, hashed and recorded as
    ``validation``. Yields the client, its trail and the version's ``name:version``."""
    root = tmp_path / "model_store"
    shutil.copytree(settings.model_store, root)
    data = leaking_classifier(secret_below_cwd)
    spec = leaking_spec(data, MODEL, f"leak-{uuid.uuid4().hex[:8]}")
    store = ModelStore(root)
    store.add(data, spec)
    own = own_database(settings.model_copy(update={"model_store": root}), tmp_path)
    trail = DatabaseTrail(own, process_wide=False)
    app = create_local_app(own, credentials, trail)
    with TestClient(app) as client:
        record = _record(spec, ModelStatus.VALIDATION, store)
        event = AuditEvent(
            actor="test-ml_engineer",
            role="ml_engineer",
            action=AuditAction.MODEL_REGISTER,
            object_type="model",
            object_id=spec.ref,
            model_version=spec.ref,
            details={"sha256": spec.sha256, "status": "validation"},
            model=record,
        )
        client.portal.call(trail.record, [event])
        yield client, trail, spec.ref


def test_a_file_stored_before_the_fix_never_serves(
    before_the_fix: tuple[TestClient, DatabaseTrail, str],
    engineer: dict[str, str],
    clinician: dict[str, str],
) -> None:
    """Routing it as an arm, or promoting it to production, would create its session:
    both are refused as an integrity failure, audited, and the server keeps serving."""
    api, trail, ref = before_the_fix
    endpoint = f"leak-{uuid.uuid4().hex[:8]}"
    routed = put_route(api, engineer, endpoint, {ref: 1})
    assert_problem(routed, 409, "model", "external-data")
    promoted = promote(api, engineer, *ref.split(":"), "production")
    assert_problem(promoted, 409, "model", "external-data")
    entries = on_app(api, lambda: trail.entries(0, 1000))
    failures = [e for e in entries if e.action == "model.integrity-failure"]
    assert [e.object_id for e in failures] == [ref, ref]
    pinned = api.post("/infer", json=infer_body(pixels(3, 64, 64), model=ref), headers=clinician)
    assert_problem(pinned, 404, "model", "served")
    api.headers.update(clinician)
    assert_still_serving(api)
