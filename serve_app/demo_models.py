"""Deterministic synthetic ONNX models for demos, tests and benchmarks.

Each builder returns serialized model bytes that are identical on every run
(fixed seeds, fixed construction order), so the content-addressed model store
gets the same SHA-256 wherever the models are built. The classifiers' weights are
random: they exercise the serving stack and carry no clinical meaning. The segmentation
and detection demos have hand-set weights that find bright regions, so tests can check
where their masks and boxes land.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# NOTE: onnx 1.23 writes IR 14 by default, which onnxruntime 1.31 cannot read (max IR 13).
_IR_VERSION = 10
_OPSET = 17
_PRODUCER = "medai-flow"
_DESCRIPTION = (
    "Synthetic demo model with random weights for exercising the serving stack; "
    "NOT for clinical use."
)
_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]
# NOTE: He init keeps each residual branch at unit variance, so 16 residual adds would grow the
# activations ~2**8-fold and saturate the softmax; a damped last conv per branch (the role a
# small final batch-norm gamma plays in trained ResNets) keeps the logits moderate.
_RESIDUAL_GAIN = 0.2
_HEAD_GAIN = 0.1

Dims = Sequence[int | str]


@dataclass(frozen=True)
class DemoModel:
    """A buildable demo model; ``on_demand`` ones are too big to build by default."""

    name: str
    version: str
    build: Callable[[], bytes]
    on_demand: bool


class _GraphBuilder:
    """Accumulates NCHW float32 nodes and He-initialised weights; methods return tensor names."""

    def __init__(self, seed: int, input_name: str, input_shape: Dims) -> None:
        self._rng = np.random.default_rng(seed)
        self._input = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: list[onnx.TensorProto] = []
        self._channels: dict[str, int] = {input_name: int(input_shape[1])}
        self.input = input_name

    def _next_name(self, op_type: str) -> str:
        return f"{op_type.lower()}_{len(self._nodes)}"

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        name = self._next_name(op_type)
        out = out or name
        self._nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, **attrs))
        self._channels.setdefault(out, self._channels[inputs[0]])
        return out

    def _weights(self, op_type: str, shape: tuple[int, ...], gain: float) -> tuple[str, str]:
        """He-normal weight (fan-in = all but the first dim) and zero bias for the next node."""
        prefix = self._next_name(op_type)
        std = gain * (2.0 / int(np.prod(shape[1:]))) ** 0.5
        weight = self._rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        bias = np.zeros(shape[0], dtype=np.float32)
        for suffix, array in (("weight", weight), ("bias", bias)):
            self._initializers.append(numpy_helper.from_array(array, f"{prefix}.{suffix}"))
        return f"{prefix}.weight", f"{prefix}.bias"

    def conv(self, x: str, cout: int, k: int, stride: int = 1, gain: float = 1.0) -> str:
        """Conv with bias, the shape a conv takes once batch-norm is folded into it."""
        cin = self._channels[x]
        weight, bias = self._weights("Conv", (cout, cin, k, k), gain)
        pads = [k // 2] * 4
        y = self.op("Conv", x, weight, bias, kernel_shape=[k, k], strides=[stride] * 2, pads=pads)
        self._channels[y] = cout
        return y

    def relu(self, x: str) -> str:
        return self.op("Relu", x)

    def head(self, x: str, classes: int, out: str, gain: float = 1.0) -> str:
        """GlobalAveragePool, Flatten and a fully connected layer to ``classes`` outputs."""
        flat = self.op("Flatten", self.op("GlobalAveragePool", x), axis=1)
        cin = self._channels[flat]
        weight, bias = self._weights("Gemm", (classes, cin), gain)
        return self.op("Gemm", flat, weight, bias, out=out, transB=1)

    def serialize(self, name: str, output: str, output_shape: Dims, props: dict[str, str]) -> bytes:
        graph = helper.make_graph(
            self._nodes,
            name,
            [self._input],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
            self._initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name=_PRODUCER
        )
        model.ir_version = _IR_VERSION
        model.model_version = 1
        model.doc_string = _DESCRIPTION
        helper.set_model_props(model, props)
        onnx.checker.check_model(model)
        data: bytes = model.SerializeToString()
        return data


def _props(
    labels: list[str],
    threshold: float,
    mean: list[float],
    std: list[float],
    output_kind: str,
    domain: str,
    positive_index: int | None = None,
) -> dict[str, str]:
    props = {
        "medai.labels": json.dumps(labels),
        "medai.threshold": json.dumps(threshold),
        "medai.mean": json.dumps(mean),
        "medai.std": json.dumps(std),
        "medai.output_kind": output_kind,
        "medai.clinical_domain": domain,
        "medai.description": _DESCRIPTION,
    }
    if positive_index is not None:
        props["medai.positive_index"] = json.dumps(positive_index)
    return props


def _small_cnn(g: _GraphBuilder, widths: Sequence[int], classes: int, out: str) -> str:
    x = g.input
    for width in widths:
        x = g.relu(g.conv(x, width, 3, stride=2))
    return g.head(x, classes, out)


def build_chest_xray_demo() -> bytes:
    """2-class chest X-ray classifier: 1x256x256 in, softmax probabilities out (~100 MFLOP)."""
    g = _GraphBuilder(seed=1, input_name="pixel_values", input_shape=["batch", 1, 256, 256])
    logits = _small_cnn(g, (16, 32, 64, 64), classes=2, out="logits")
    probs = g.op("Softmax", logits, out="probabilities", axis=1)
    props = _props(
        ["no_finding", "pneumonia"], 0.85, [0.5], [0.25], "probabilities", "radiology", 1
    )
    return g.serialize("chest-xray-demo", probs, ["batch", 2], props)


def build_derm_demo() -> bytes:
    """2-class dermoscopy classifier: 3x224x224 in, raw logits out."""
    g = _GraphBuilder(seed=2, input_name="input", input_shape=["N", 3, 224, 224])
    logits = _small_cnn(g, (16, 32, 64), classes=2, out="logits")
    props = _props(
        ["benign", "malignant"], 0.7, _IMAGENET_MEAN, _IMAGENET_STD, "logits", "dermatology", 1
    )
    return g.serialize("derm-demo", logits, ["N", 2], props)


def _bottleneck(g: _GraphBuilder, x: str, width: int, stride: int, project: bool) -> str:
    y = g.relu(g.conv(x, width, 1))
    y = g.relu(g.conv(y, width, 3, stride=stride))
    y = g.conv(y, width * 4, 1, gain=_RESIDUAL_GAIN)
    shortcut = g.conv(x, width * 4, 1, stride=stride) if project else x
    return g.relu(g.op("Add", y, shortcut))


def _basic_block(g: _GraphBuilder, x: str, width: int, stride: int, project: bool) -> str:
    y = g.relu(g.conv(x, width, 3, stride=stride))
    y = g.conv(y, width, 3, gain=_RESIDUAL_GAIN)
    shortcut = g.conv(x, width, 1, stride=stride) if project else x
    return g.relu(g.op("Add", y, shortcut))


def _imagenet_bench(g: _GraphBuilder, name: str, x: str) -> bytes:
    logits = g.head(x, 1000, out="logits", gain=_HEAD_GAIN)
    probs = g.op("Softmax", logits, out="probabilities", axis=1)
    labels = [f"class_{i}" for i in range(1000)]
    props = _props(labels, 0.5, _IMAGENET_MEAN, _IMAGENET_STD, "probabilities", "benchmark")
    return g.serialize(name, probs, ["batch", 1000], props)


def build_resnet18_bench() -> bytes:
    """ResNet-18-shaped benchmark (~11.7M parameters, ~1.8 GFLOPs): the size of the small
    CNNs common in clinical imaging, and of the "small CNN" behind issue 2's targets."""
    g = _GraphBuilder(seed=18, input_name="images", input_shape=["batch", 3, 224, 224])
    x = g.relu(g.conv(g.input, 64, 7, stride=2))
    x = g.op("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for stage, width in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(g, x, width, stride, project=stage > 0 and block == 0)
    return _imagenet_bench(g, "resnet18-bench", x)


def build_resnet50_bench() -> bytes:
    """ResNet-50-shaped benchmark (~25.5M parameters, ~4.1 GFLOPs), batch-norm folded."""
    g = _GraphBuilder(seed=50, input_name="images", input_shape=["batch", 3, 224, 224])
    x = g.relu(g.conv(g.input, 64, 7, stride=2))
    x = g.op("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _bottleneck(g, x, width, stride, project=block == 0)
    return _imagenet_bench(g, "resnet50-bench", x)


_REGION_SIDE = 128
_BLUR = 5
"""The region demos average each pixel's 5x5 neighbourhood: a blob of a few pixels counts,
a lone hot pixel does not."""
_REGION_PROPS = {
    "medai.layout": "NCHW",
    "medai.mean": "[0.0]",
    "medai.std": "[1.0]",
    "medai.output_kind": "probabilities",
    "medai.clinical_domain": "demo",
}


def _region_graph(
    name: str,
    nodes: list[onnx.NodeProto],
    output: onnx.ValueInfoProto,
    initializers: list[onnx.TensorProto],
    props: dict[str, str],
) -> bytes:
    side = _REGION_SIDE
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, side, side])
    blur = numpy_helper.from_array(
        np.full((1, 1, _BLUR, _BLUR), 1 / _BLUR**2, dtype=np.float32), "blur.weight"
    )
    pads = [_BLUR // 2] * 4
    first = helper.make_node("Conv", ["image", "blur.weight"], ["blurred"], pads=pads)
    graph = helper.make_graph([first, *nodes], name, [image], [output], [blur, *initializers])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name=_PRODUCER
    )
    model.ir_version = _IR_VERSION
    model.model_version = 1
    model.doc_string = _REGION_DESCRIPTION
    helper.set_model_props(
        model, _REGION_PROPS | {"medai.description": _REGION_DESCRIPTION} | props
    )
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


_REGION_DESCRIPTION = (
    "Synthetic demo model with hand-set weights that finds bright regions (mean of a 5x5 "
    "neighbourhood over 0.5); NOT for clinical use."
)


def build_lesion_seg_demo() -> bytes:
    """Segments bright regions: 1x128x128 in, (batch, 1, 128, 128) probabilities out, each
    pixel's ``sigmoid(20 * (mean of its 5x5 neighbourhood - 0.5))``."""
    consts = [
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array(20.0, dtype=np.float32), "gain"),
    ]
    nodes = [
        helper.make_node("Sub", ["blurred", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["scores"]),
        helper.make_node("Sigmoid", ["scores"], ["probabilities"]),
    ]
    side = _REGION_SIDE
    output = helper.make_tensor_value_info(
        "probabilities", TensorProto.FLOAT, ["batch", 1, side, side]
    )
    props = {
        "medai.kind": "segmentation",
        "medai.labels": json.dumps(["bright_region"]),
        "medai.threshold": "0.5",
        "medai.background_index": "null",
    }
    return _region_graph("lesion-seg-demo", nodes, output, consts, props)


def build_lesion_detect_demo() -> bytes:
    """Boxes the bright region: 1x128x128 in, (batch, 2, 5) out: the box around every pixel
    whose 5x5 mean is over 0.5 (x0, y0, x1, y1 in input pixels, the end exclusive) with the
    brightest 5x5 mean as its score, then the same box a pixel further with 0.9 of that
    score, which non-maximum suppression drops. No bright pixel gives an empty box."""
    side = _REGION_SIDE
    ascending = np.arange(side, dtype=np.float32)
    consts = [
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array((ascending + 1).reshape(1, 1, side), "ends"),
        numpy_helper.from_array((side - ascending).reshape(1, 1, side), "from_end"),
        numpy_helper.from_array(np.array([side], dtype=np.float32), "side"),
        numpy_helper.from_array(np.array([1, 1, 1, 1, 0], dtype=np.float32), "shift"),
        numpy_helper.from_array(np.array([1, 1, 1, 1, 0.9], dtype=np.float32), "weaker"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Greater", ["blurred", "half"], ["bright_bool"]),
        helper.make_node("Cast", ["bright_bool"], ["bright"], to=TensorProto.FLOAT),
        # (batch, 1, rows) and (batch, 1, columns): whether each holds a bright pixel
        helper.make_node("ReduceMax", ["bright"], ["rows"], axes=[3], keepdims=0),
        helper.make_node("ReduceMax", ["bright"], ["cols"], axes=[2], keepdims=0),
    ]
    for axis, lines in (("y", "rows"), ("x", "cols")):
        nodes += [
            helper.make_node("Mul", [lines, "ends"], [f"{axis}_ends"]),
            helper.make_node("ReduceMax", [f"{axis}_ends"], [f"{axis}1"], axes=[2], keepdims=0),
            helper.make_node("Mul", [lines, "from_end"], [f"{axis}_from_end"]),
            helper.make_node(
                "ReduceMax", [f"{axis}_from_end"], [f"{axis}_first"], axes=[2], keepdims=0
            ),
            helper.make_node("Sub", ["side", f"{axis}_first"], [f"{axis}0"]),
        ]
    nodes += [
        helper.make_node("ReduceMax", ["blurred"], ["score"], axes=[2, 3], keepdims=0),
        helper.make_node("Concat", ["x0", "y0", "x1", "y1", "score"], ["box"], axis=1),
        helper.make_node("Add", ["box", "shift"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "weaker"], ["echo"]),
        helper.make_node("Unsqueeze", ["box", "axis1"], ["first_box"]),
        helper.make_node("Unsqueeze", ["echo", "axis1"], ["second_box"]),
        helper.make_node("Concat", ["first_box", "second_box"], ["boxes"], axis=1),
    ]
    output = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", 2, 5])
    props = {
        "medai.kind": "detection",
        "medai.labels": json.dumps(["bright_region"]),
        "medai.threshold": "0.5",
        "medai.nms_iou": "0.5",
        "medai.max_detections": "10",
    }
    return _region_graph("lesion-detect-demo", nodes, output, consts, props)


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel("chest-xray-demo", "1.0.0", build_chest_xray_demo, on_demand=False),
    DemoModel("derm-demo", "1.0.0", build_derm_demo, on_demand=False),
    DemoModel("lesion-seg-demo", "1.0.0", build_lesion_seg_demo, on_demand=False),
    DemoModel("lesion-detect-demo", "1.0.0", build_lesion_detect_demo, on_demand=False),
    DemoModel("resnet18-bench", "1.0.0", build_resnet18_bench, on_demand=True),
    DemoModel("resnet50-bench", "1.0.0", build_resnet50_bench, on_demand=True),
)
