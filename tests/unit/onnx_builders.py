"""Tiny real ONNX models for unit tests, built with ``onnx.helper``.

NOTE: onnx 1.23 writes IR version 14 by default, which onnxruntime 1.31 cannot
read; every builder here pins IR 10 and opset 17 unless told otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from serve_app.catalog.spec import Layout, ModelMetadata, ModelSpec

IR_VERSION = 10
OPSET = 17

Dim = int | str | None


def model_bytes(
    graph: onnx.GraphProto,
    metadata: Mapping[str, str] | None = None,
    ir_version: int = IR_VERSION,
) -> bytes:
    """Wrap a graph in a model with the given ``metadata_props`` and serialise it."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = ir_version
    helper.set_model_props(model, dict(metadata or {}))
    return model.SerializeToString()


def metadata_props(
    labels: Sequence[str] | None, metadata: Mapping[str, object] | None
) -> dict[str, str]:
    """``medai.labels`` from ``labels``; other values JSON-encoded unless already strings."""
    props = {} if labels is None else {"medai.labels": json.dumps(list(labels))}
    for key, value in (metadata or {}).items():
        props[key] = value if isinstance(value, str) else json.dumps(value)
    return props


def tiny_classifier(
    input_shape: Sequence[Dim],
    layout: str = "NCHW",
    labels: Sequence[str] | None = ("negative", "positive"),
    metadata: Mapping[str, object] | None = None,
    ir_version: int = IR_VERSION,
    outputs: int | None = None,
    input_type: int = TensorProto.FLOAT,
) -> bytes:
    """Image classifier: mean over the spatial axes, MatMul to ``outputs`` classes, Softmax.

    ``outputs`` defaults to the number of labels. ``layout`` only picks which
    axes are spatial; the model's metadata says nothing about it unless asked.
    The weights differ per channel and class, so distinct images give distinct rows.
    """
    classes = len(labels or ("negative", "positive")) if outputs is None else outputs
    channel_axis = 1 if layout == "NCHW" else 3
    channels = input_shape[channel_axis]
    assert isinstance(channels, int), "the channel axis must be fixed"
    spatial = [2, 3] if layout == "NCHW" else [1, 2]
    weights = np.arange(1, channels * classes + 1, dtype=np.float32).reshape(channels, classes)

    nodes = []
    source = "image"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        source = "image_f"
    nodes += [
        helper.make_node("ReduceMean", [source], ["pooled"], axes=spatial, keepdims=0),
        helper.make_node("MatMul", ["pooled", "weights"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_classifier",
        [helper.make_tensor_value_info("image", input_type, list(input_shape))],
        [
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, [input_shape[0], classes]
            )
        ],
        initializer=[numpy_helper.from_array(weights, "weights")],
    )
    return model_bytes(graph, metadata_props(labels, metadata), ir_version)


def two_input_model() -> bytes:
    """Two 4-D image inputs added together: not a single-image model."""
    shape = [1, 3, 64, 64]
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["sum"]),
            helper.make_node("ReduceMean", ["sum"], ["probabilities"], axes=[2, 3], keepdims=0),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, shape),
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])],
    )
    return model_bytes(graph)


def three_d_input_model() -> bytes:
    """A (N, H, W) input with no channel axis."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["pooled"], axes=[2], keepdims=0)],
        "three_d",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 64, 64])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 64])],
    )
    return model_bytes(graph)


def make_spec(
    shape: list[int | None],
    layout: Layout = Layout.NCHW,
    dtype: str = "float32",
    metadata: ModelMetadata | None = None,
) -> ModelSpec:
    """A ModelSpec for code that reads specs but never opens the model file."""
    return ModelSpec(
        name="chest",
        version="3",
        sha256="0" * 64,
        size_bytes=10,
        input_name="image",
        input_shape=shape,
        input_dtype=dtype,
        layout=layout,
        output_name="probabilities",
        output_shape=[shape[0], 2],
        metadata=metadata or ModelMetadata(),
    )


def log_of_brightness(side: int = 64) -> bytes:
    """``[log(m - 0.5), 0]`` of the mean pixel ``m``: NaN for a dark image, finite for a
    bright one (ONNX Runtime's Log of a negative). 1 channel, NCHW, labels dark/bright."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Sub", ["mean", "half"], ["centred"]),
            helper.make_node("Log", ["centred"], ["logged"]),
            helper.make_node("Unsqueeze", ["logged", "axis"], ["column"]),
            helper.make_node("Mul", ["column", "zero"], ["zeros"]),
            helper.make_node("Concat", ["column", "zeros"], ["scores"], axis=1),
        ],
        "log_of_brightness",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 1, side, side])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 2])],
        initializer=[
            numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ],
    )
    return model_bytes(graph, metadata_props(["dark", "bright"], None))


def external(tensor: TensorProto, location: str, length: int | None = None) -> TensorProto:
    """``tensor`` with its data moved out of the file to ``location`` (nothing embedded)."""
    for field in ("raw_data", "float_data", "int64_data", "int32_data"):
        tensor.ClearField(field)
    tensor.data_location = TensorProto.EXTERNAL
    nbytes = length if length is not None else 4 * int(np.prod(tensor.dims))
    for key, value in (("location", location), ("offset", "0"), ("length", str(nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def leaking_classifier(location: str, classes: int = 64) -> bytes:
    """What finding 1's attacker uploads: a valid image classifier whose ``classes`` output
    scores are a weightless initializer read from ``location`` (external data), plus the
    mean of the image. ONNX Runtime, loading it from bytes, reads ``location`` relative to
    its working directory, so the outputs are that file's bytes as float32.

    NOTE: 64 values, not 2: ONNX Runtime's constant sharing folds initializers of 8 or
    fewer values, and that pass cannot read external data from a model without a path."""
    leak = external(
        helper.make_tensor("leak", TensorProto.FLOAT, [1, classes], [0.0] * classes), location
    )
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1])
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=1),
            helper.make_node("Reshape", ["mean", "shape"], ["column"]),
            helper.make_node("Add", ["column", "leak"], ["scores"]),
        ],
        "leaking_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 64, 64])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, classes])],
        [leak, shape],
    )
    labels = [f"c{i}" for i in range(classes)]
    return model_bytes(graph, metadata_props(labels, {"medai.output_kind": "logits"}))


def leaking_spec(data: bytes, name: str, version: str, classes: int = 64) -> ModelSpec:
    """The spec registration gave ``leaking_classifier`` before uploads were checked for
    external data: what a store written before the fix holds."""
    labels = [f"c{i}" for i in range(classes)]
    return ModelSpec(
        name=name,
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        input_name="image",
        input_shape=[1, 1, 64, 64],
        input_dtype="float32",
        layout=Layout.NCHW,
        output_name="scores",
        output_shape=[1, classes],
        metadata=ModelMetadata(labels=labels, output_kind="logits"),
    )


def slow_by_brightness(input_shape: Sequence[Dim], steps_per_unit: int = 1_000_000) -> bytes:
    """A classifier that first counts to ``steps_per_unit`` times its brightest pixel, one
    ONNX ``Loop`` step at a time (sequential: about one CPU core): a zero input, as
    registration proves a model runs on, answers at once; a bright one holds its runner
    for as long as the caller asks. Outputs as :func:`tiny_classifier`'s, plus 0 * count."""
    count_body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond"], ["cond_out"]),
            helper.make_node("Add", ["count", "one"], ["count_out"]),
        ],
        "count",
        [
            helper.make_tensor_value_info("step", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("count", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("count_out", TensorProto.FLOAT, []),
        ],
        initializer=[numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")],
    )
    classifier = onnx.load_from_string(tiny_classifier(input_shape))
    graph = classifier.graph
    graph.node.extend(
        [
            helper.make_node("ReduceMax", ["image"], ["brightest"], keepdims=0),
            helper.make_node("Mul", ["brightest", "steps_per_unit"], ["steps_f"]),
            helper.make_node("Cast", ["steps_f"], ["steps"], to=TensorProto.INT64),
            helper.make_node("Mul", ["brightest", "zero"], ["start"]),
            helper.make_node("Loop", ["steps", "", "start"], ["counted"], body=count_body),
            helper.make_node("Mul", ["counted", "zero"], ["nothing"]),
            helper.make_node("Add", ["probabilities", "nothing"], ["held"]),
        ]
    )
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(steps_per_unit, dtype=np.float32), "steps_per_unit"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ]
    )
    (output,) = graph.output
    output.name = "held"
    return model_bytes(graph, metadata_props(("negative", "positive"), None))


def mean_filled_model(
    dims: Sequence[int],
    metadata: Mapping[str, object],
    side: int = 32,
    integral: bool = False,
) -> bytes:
    """(N, 1, side, side) in; out, (N, *dims) filled with the image's mean (as int64 when
    ``integral``): a model whose output has any shape, for a kind's shape checks."""
    target = numpy_helper.from_array(np.array(dims, dtype=np.int64), "dims")
    ones = numpy_helper.from_array(np.array([0] + [1] * len(dims), dtype=np.int64), "ones")
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "ones"], ["column"]),
        helper.make_node("Shape", ["image"], ["image_shape"], end=1),
        helper.make_node("Concat", ["image_shape", "dims"], ["shape"], axis=0),
        helper.make_node("Expand", ["column", "shape"], ["filled"]),
    ]
    out_type = TensorProto.FLOAT
    if integral:
        nodes.append(helper.make_node("Cast", ["filled"], ["out"], to=TensorProto.INT64))
        out_type = TensorProto.INT64
    else:
        nodes.append(helper.make_node("Identity", ["filled"], ["out"]))
    graph = helper.make_graph(
        nodes,
        "mean_filled",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, side, side])],
        [helper.make_tensor_value_info("out", out_type, ["N", *dims])],
        initializer=[target, ones],
    )
    return model_bytes(graph, metadata_props(None, metadata))
