"""Finding 1: no ONNX file may make ONNX Runtime read another file (external tensor data),
wherever in the model the tensor hides, at registration or when a session is made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper

from serve_app.catalog.store import ModelStore, TamperedModel
from serve_app.errors import InvalidInput
from serve_app.runtime.examine import inspect_model
from serve_app.runtime.onnx_guard import external_tensors, refuse_external_data
from serve_app.runtime.onnx_model import OnnxModel
from serve_app.runtime.versions import LoadedVersions
from serve_app.settings import RuntimeSettings
from tests.unit.onnx_builders import (
    OPSET,
    external,
    leaking_classifier,
    leaking_spec,
    model_bytes,
    tiny_classifier,
)

SECRET = b"medai-test-secret-" * 16


@pytest.fixture
def secret_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A secret-like file below the working directory, as ``data/dev-secrets/`` is under
    ``make serve``; returns its relative path."""
    (tmp_path / "data" / "dev-secrets").mkdir(parents=True)
    (tmp_path / "data" / "dev-secrets" / "medai_jwt_secret").write_bytes(SECRET)
    monkeypatch.chdir(tmp_path)
    return "data/dev-secrets/medai_jwt_secret"


def ext_tensor(name: str = "v", n: int = 64) -> TensorProto:
    return external(helper.make_tensor(name, TensorProto.FLOAT, [n], [0.0] * n), "secret.bin")


def constant(output: str, tensor: TensorProto) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [output], value=tensor)


def graph(nodes: list, initializers: list | None = None, sparse: list | None = None):
    io = helper.make_tensor_value_info
    return helper.make_graph(
        nodes,
        "g",
        [io("x", TensorProto.FLOAT, [64])],
        [io("y", TensorProto.FLOAT, [64])],
        initializers or [],
        sparse_initializer=sparse or [],
    )


def sparse(values: TensorProto) -> onnx.SparseTensorProto:
    indices = helper.make_tensor("i", TensorProto.INT64, [1], [0])
    return helper.make_sparse_tensor(values, indices, [64])


def tensors_attribute() -> AttributeProto:
    attribute = AttributeProto(name="tensors", type=AttributeProto.TENSORS)
    attribute.tensors.extend([ext_tensor()])
    return attribute


def nested_subgraph() -> onnx.GraphProto:
    """The external tensor in an If branch inside a Loop body inside the main graph."""
    inner = graph([constant("y", ext_tensor())])
    empty = graph([helper.make_node("Identity", ["x"], ["y"])])
    branch = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=empty)
    body = graph([branch])
    loop = helper.make_node("Loop", ["n", "c", "x"], ["y"], body=body)
    return graph([loop])


def function_model() -> bytes:
    """The external tensor in a model-local function's Constant node."""
    function = helper.make_function(
        "local",
        "Leak",
        ["x"],
        ["y"],
        [constant("y", ext_tensor())],
        [helper.make_opsetid("", OPSET)],
    )
    model = helper.make_model(
        graph([helper.make_node("Leak", ["x"], ["y"], domain="local")]),
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)],
        functions=[function],
    )
    model.ir_version = 10
    return model.SerializeToString()


HIDING_PLACES = {
    "initializer": lambda: model_bytes(graph([], [ext_tensor()])),
    "sparse initializer": lambda: model_bytes(graph([], sparse=[sparse(ext_tensor())])),
    "tensor attribute": lambda: model_bytes(graph([constant("y", ext_tensor())])),
    "sparse_tensor attribute": lambda: model_bytes(
        graph([helper.make_node("Constant", [], ["y"], sparse_value=sparse(ext_tensor()))])
    ),
    "tensors attribute": lambda: model_bytes(
        graph([onnx.NodeProto(op_type="Custom", output=["y"], attribute=[tensors_attribute()])])
    ),
    "subgraph": lambda: model_bytes(nested_subgraph()),
    "function": function_model,
}


@pytest.mark.parametrize("where", list(HIDING_PLACES))
def test_an_external_tensor_is_found_wherever_it_hides(where: str) -> None:
    data = HIDING_PLACES[where]()
    with pytest.raises(InvalidInput) as info:
        refuse_external_data(data)
    assert (info.value.field, info.value.rule) == ("file", "external-data")
    assert "secret.bin" not in info.value.detail  # the path it names is never echoed


def test_where_names_the_subgraph_and_the_function() -> None:
    (in_subgraph,) = external_tensors(onnx.load_from_string(HIDING_PLACES["subgraph"]()))
    assert in_subgraph.count("subgraph") == 2
    (in_function,) = external_tensors(onnx.load_from_string(function_model()))
    assert in_function.startswith("function 'Leak'")


def test_a_self_contained_model_passes() -> None:
    refuse_external_data(tiny_classifier([None, 1, 64, 64]))


def test_bytes_that_are_no_onnx_model_are_refused_as_onnx() -> None:
    with pytest.raises(InvalidInput) as info:
        refuse_external_data(b"\xff" * 64)
    assert info.value.rule == "onnx"


def test_inspecting_an_upload_never_reads_the_file_it_names(secret_in_cwd: str) -> None:
    """The reviewer's upload: before the fix, inspection passed and the model's outputs
    were the secret's bytes."""
    with pytest.raises(InvalidInput) as info:
        inspect_model(leaking_classifier(secret_in_cwd), "leak", "1")
    assert (info.value.field, info.value.rule) == ("file", "external-data")


def test_a_session_is_never_made_of_a_file_stored_before_the_check(
    secret_in_cwd: str, tmp_path: Path
) -> None:
    """A file registered before uploads were checked is in the store with a valid hash:
    loading it for serving is refused before ONNX Runtime sees it."""
    data = leaking_classifier(secret_in_cwd)
    spec = leaking_spec(data, "leak", "1")
    store = ModelStore(tmp_path / "store")
    store.add(data, spec)  # as registration did before the fix
    versions = LoadedVersions(store, RuntimeSettings(device="cpu"))
    with pytest.raises(TamperedModel) as info:
        versions.load(spec)
    assert (info.value.field, info.value.rule) == ("model", "external-data")
    assert versions.hashes == []
    with pytest.raises(InvalidInput) as direct:
        OnnxModel(data, spec, RuntimeSettings(device="cpu"))
    assert direct.value.rule == "external-data"


def test_the_attack_model_does_read_the_file_when_nothing_checks(secret_in_cwd: str) -> None:
    """The guard is not refusing a harmless file: ONNX Runtime itself reads it."""
    import onnxruntime as ort

    session = ort.InferenceSession(
        leaking_classifier(secret_in_cwd), providers=["CPUExecutionProvider"]
    )
    (scores,) = session.run(None, {"image": np.zeros([1, 1, 64, 64], np.float32)})
    assert scores.tobytes() == SECRET[: scores.nbytes]
