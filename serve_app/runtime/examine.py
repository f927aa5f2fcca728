"""Everything the registry reads from an ONNX file, assumes about it, or refuses in it,
each with its fix.

Registration (``inspect_model``, in a limited child process) refuses the file on the first
refusal found; ``medai models check`` shows every finding. One set of rules serves both.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from onnx import ModelProto

from serve_app.catalog.spec import (
    METADATA_PREFIX,
    ModelKind,
    ModelMetadata,
    ModelSpec,
    dims,
    infer_layout,
    numpy_dtype,
    parse_metadata,
)
from serve_app.codecs.dtypes import ONNX_TENSOR_TYPES
from serve_app.errors import InvalidInput
from serve_app.runtime.findings import Examination, Verdict
from serve_app.runtime.kinds import output_problem
from serve_app.runtime.onnx_guard import external_data_error, parse_model
from serve_app.runtime.onnx_model import open_session, out_of_memory
from serve_app.settings import RuntimeSettings

MAX_IR_VERSION = 13
"""The newest ONNX IR version ONNX Runtime 1.31 reads (onnx 1.23 writes 14 by default)."""
MAX_OPSET = 26
"""The newest ``ai.onnx`` opset ONNX Runtime 1.31 implements
(tests/unit/test_examine.py loads it and fails one above)."""

SET_PROPS = "onnx.helper.set_model_props(model, {...}) before onnx.save"
FIX_IR = (
    f"save it with IR version {MAX_IR_VERSION} or older: model.ir_version = 10 before "
    "onnx.save (exporters at opset 17 write IR 8 to 10)"
)
FIX_OPSET = (
    f"export at opset {MAX_OPSET} or older (torch.onnx.export(..., opset_version=17), "
    "tf2onnx --opset 17, skl2onnx to_onnx(..., target_opset=17))"
)
FIX_INPUT = (
    "export one image input of 4 dimensions: NCHW (batch, 1 or 3 channels, height, width) "
    "or NHWC; fold other inputs into the graph as constants"
)
FIX_FLAT_INPUT = (
    "the model takes flat features (scikit-learn): give it an image input, a Flatten node "
    "from (batch, channels, height, width) to its features (README, Models)"
)
FIX_DYNAMIC_BATCH = (
    "export with a dynamic batch axis (torch: dynamic_axes={'input': {0: 'batch'}}; "
    "tf2onnx and skl2onnx: None as the first dimension)"
)


def inspect_model(
    data: bytes, name: str, version: str, runtime: RuntimeSettings | None = None
) -> ModelSpec:
    """Read a model's spec from its graph and metadata, and prove it runs on a zero input;
    raise the first refusal as ``InvalidInput`` (field ``file``, the finding's rule).

    It runs the uploader's graph: registration calls it in a limited child process
    (``serve_app.runtime.inspection``)."""
    found = examine(data, name, version, runtime)
    if found.refusals:
        raise found.refusals[0].error()
    assert found.spec is not None
    return found.spec


def examine(
    data: bytes, name: str = "check", version: str = "0", runtime: RuntimeSettings | None = None
) -> Examination:
    """Every finding about the ONNX file ``data``. Later steps need earlier ones, so a
    refusal that leaves nothing to read further ends the examination there."""
    found = Examination()
    try:
        model = parse_model(data)
    except InvalidInput as error:
        found.refuse(error, "save the model with onnx.save or your exporter; this is no ONNX file")
        return found
    _file(model, found)
    if found.refusals:
        return found
    try:
        session = open_session(data, runtime)
    except InvalidInput as error:
        found.refuse(error, "load it with onnxruntime.InferenceSession to see ONNX Runtime's error")
        return found
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        shapes = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        flat = len(inputs) == 1 and len(inputs[0].shape) == 2
        found.add(
            Verdict.REFUSED,
            "model-input",
            f"model must take exactly one 4-D image tensor; it takes {shapes or 'none'}",
            FIX_FLAT_INPUT if flat else FIX_INPUT,
        )
        return found
    props = session.get_modelmeta().custom_metadata_map
    try:
        metadata = parse_metadata(props)
    except InvalidInput as error:
        found.refuse(error, f"fix that value with {SET_PROPS} (values are JSON)")
        return found
    spec = _spec(data, name, version, inputs[0], outputs[0], metadata, found)
    if spec is None:
        return found
    _metadata(spec, props, found)
    if not found.refusals:
        _run(session, spec, found)
    found.spec = None if found.refusals else spec
    return found


def _file(model: ModelProto, found: Examination) -> None:
    ir = model.ir_version
    if ir > MAX_IR_VERSION:
        found.add(
            Verdict.REFUSED,
            "onnx",
            f"file has IR version {ir}; ONNX Runtime 1.31 reads IR version "
            f"{MAX_IR_VERSION} or older",
            FIX_IR,
        )
    else:
        found.add(Verdict.OK, "onnx", f"IR version {ir}")
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    opset = opsets.get("ai.onnx")
    if opset is not None and opset > MAX_OPSET:
        found.add(
            Verdict.REFUSED,
            "onnx",
            f"file uses opset {opset}; ONNX Runtime 1.31 implements opset {MAX_OPSET} or older",
            FIX_OPSET,
        )
    else:
        named = ", ".join(f"{domain} {version}" for domain, version in sorted(opsets.items()))
        found.add(Verdict.OK, "onnx", f"opset {named}")
    external = external_data_error(model)
    if external is not None:
        found.refuse(
            external,
            "save every tensor inside the file: onnx.save(model, path) without "
            "save_as_external_data (a model over 2 GB cannot be served)",
        )


def _spec(
    data: bytes,
    name: str,
    version: str,
    image: Any,
    output: Any,
    metadata: ModelMetadata,
    found: Examination,
) -> ModelSpec | None:
    """The spec, when the input's layout, type and fixed dimensions allow one."""
    shape = dims(image.shape)
    declared = metadata.layout
    try:
        layout = infer_layout(shape, declared)
    except InvalidInput as error:
        found.refuse(error, "set medai.layout to NCHW or NHWC, or export 1 or 3 channels")
        return None
    try:
        dtype = numpy_dtype(image.type).name
    except InvalidInput as error:
        found.refuse(
            error,
            "export a numeric image input (float32 or float16; integers work too)",
        )
        return None
    out_type = output.type
    spec = ModelSpec(
        name=name,
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        input_name=image.name,
        input_shape=shape,
        input_dtype=dtype,
        layout=layout,
        output_name=output.name,
        output_shape=dims(output.shape),
        metadata=metadata,
        output_dtype=ONNX_TENSOR_TYPES[out_type].name if out_type in ONNX_TENSOR_TYPES else None,
    )
    if any(d is None for d in shape[1:]):
        found.add(
            Verdict.REFUSED,
            "model-input",
            f"model input {spec.input_name} needs fixed channel, height and width "
            f"dimensions, got {shape}",
            "export with a fixed image size (images are resized to it); only the batch "
            "axis may be dynamic",
        )
        return None
    size = f"{spec.channels} channel(s), {spec.height}x{spec.width} {layout.value} {dtype}"
    if declared is None:
        found.add(
            Verdict.GUESSED,
            "model-input",
            f"layout {layout.value} guessed from input shape {shape} ({size})",
            f'state it: medai.layout = "{layout.value}" ({SET_PROPS})',
        )
    else:
        found.add(Verdict.OK, "model-input", f"input {spec.input_name}: {size}")
    batch = shape[0]
    if batch is None:
        found.add(Verdict.OK, "model-input", "dynamic batch axis: images are batched together")
    elif batch == 1:
        found.add(
            Verdict.GUESSED,
            "model-input",
            "batch axis fixed at 1: every image runs alone, never batched",
            FIX_DYNAMIC_BATCH,
        )
    else:
        found.add(
            Verdict.REFUSED,
            "model-input",
            f"batch axis fixed at {batch}: the platform runs one image at a time on a "
            "fixed batch axis, which this model refuses",
            FIX_DYNAMIC_BATCH,
        )
    return spec


DEFAULTS = {
    "labels": "two classes, negative and positive",
    "positive_index": "none: the likeliest label wins if over the threshold, else 'indeterminate'",
    "threshold": "0.85",
    "output_kind": "probabilities",
    "mean": "none: pixels stay in 0..1",
    "std": "none: pixels stay in 0..1",
}
"""What the registry assumes for each ``medai.*`` key a file leaves out."""
KIND_DEFAULTS: dict[ModelKind, dict[str, str]] = {
    ModelKind.CLASSIFICATION: {},
    ModelKind.SEGMENTATION: {"background_index": "none: every class gets a mask"},
    ModelKind.DETECTION: {"nms_iou": "0.5", "max_detections": "100"},
}
"""The same, for the keys only a segmentation or detection model reads."""


def _metadata(spec: ModelSpec, props: dict[str, str], found: Examination) -> None:
    metadata = spec.metadata
    defaults = DEFAULTS | KIND_DEFAULTS[metadata.kind]
    if metadata.kind is not ModelKind.CLASSIFICATION:
        del defaults["positive_index"]  # a classifier's alone
    stated = [key for key in defaults if METADATA_PREFIX + key in props]
    if stated:
        read = ", ".join(f"{key} {getattr(metadata, key)}" for key in stated)
        found.add(Verdict.OK, "model-metadata", read)
    for key, default in defaults.items():
        if METADATA_PREFIX + key not in props:
            found.add(
                Verdict.GUESSED,
                "model-metadata",
                f"no {METADATA_PREFIX}{key}: assumed {default}",
                f"set {METADATA_PREFIX}{key} ({SET_PROPS})",
            )
    for key, values in (("mean", metadata.mean), ("std", metadata.std)):
        if values is not None and len(values) not in (1, spec.channels):
            found.add(
                Verdict.REFUSED,
                "model-metadata",
                f"medai.{key} has {len(values)} values for {spec.channels} channels",
                f"give medai.{key} one value, or one per channel ({spec.channels})",
            )


def _run(session: Any, spec: ModelSpec, found: Examination) -> None:
    """Run the model on a zero input, as registration does, and hold its output to the
    labels."""
    metadata = spec.metadata
    zero = np.zeros([d or 1 for d in spec.input_shape], dtype=spec.dtype)
    try:
        (out,) = session.run([spec.output_name], {spec.input_name: zero})
    except Exception as exc:
        if out_of_memory(exc):
            found.add(
                Verdict.REFUSED,
                "memory-limit",
                "model ran out of memory on a zero input",
                "make the model smaller, or raise limits.model_inspect_memory_bytes",
            )
        else:
            found.add(
                Verdict.REFUSED,
                "model-run",
                f"model failed on a zero input: {type(exc).__name__}",
                "run it yourself with onnxruntime on np.zeros of the input shape to see why",
            )
        return
    if not isinstance(out, np.ndarray):
        found.add(
            Verdict.REFUSED,
            "model-output",
            f"model output is a {type(out).__name__}, not a tensor",
            "the first output must be a tensor (skl2onnx: options={'zipmap': False})",
        )
        return
    if metadata.kind is ModelKind.CLASSIFICATION:
        _classifier_output(out, spec, found)
    else:
        _region_output(out, spec, found)


FIX_KIND_OUTPUT = {
    ModelKind.SEGMENTATION: (
        "the first output must be (batch, classes, height, width) per-pixel scores, one "
        "class per medai.labels entry, or a (batch, height, width) integer mask of label "
        "indexes, no larger than the input"
    ),
    ModelKind.DETECTION: (
        "the first output must be (batch, boxes, 4 + classes): x0, y0, x1, y1 in input "
        "pixels, then one score per medai.labels entry"
    ),
}


def _region_output(out: np.ndarray, spec: ModelSpec, found: Examination) -> None:
    """A segmentation or detection model's output on the zero input, held to its kind."""
    kind = spec.metadata.kind
    problem = output_problem(out[0], spec) if out.ndim >= 1 and len(out) else "empty"
    if problem is not None:
        found.add(
            Verdict.REFUSED,
            "model-output",
            f"{kind.value} model output {spec.output_name} {list(out.shape)}: {problem}",
            FIX_KIND_OUTPUT[kind],
        )
        return
    labels = spec.metadata.labels
    found.add(
        Verdict.OK,
        "model-output",
        f"output {spec.output_name}: {list(out.shape[1:])} per image, {kind.value} of {labels}",
    )


def _classifier_output(out: np.ndarray, spec: ModelSpec, found: Examination) -> None:
    metadata = spec.metadata
    labels = len(metadata.labels)
    if out.ndim != 2 or out.shape[1] != labels:
        found.add(
            Verdict.REFUSED,
            "model-output",
            f"model output shape {list(out.shape)} does not match {labels} labels",
            "the first output must be (batch, classes) scores, probabilities or logits: put "
            "it first (drop a label output; skl2onnx: options={'zipmap': False}) and set "
            "medai.labels to one name per class; a segmentation or detection model states "
            "medai.kind",
        )
        return
    kind = f"{labels} {metadata.output_kind} for {metadata.labels}"
    found.add(Verdict.OK, "model-output", f"output {spec.output_name}: (batch, {labels}), {kind}")
    if metadata.positive_index is not None and not 0 <= metadata.positive_index < labels:
        found.add(
            Verdict.REFUSED,
            "model-metadata",
            f"medai.positive_index {metadata.positive_index} is not an output index",
            f"set medai.positive_index to 0..{labels - 1}",
        )
    row = np.asarray(out[0], dtype=np.float64)
    probabilities = bool(np.all((row >= 0) & (row <= 1)) and abs(row.sum() - 1) < 1e-3)
    if metadata.output_kind == "probabilities" and not probabilities:
        found.add(
            Verdict.GUESSED,
            "model-output",
            f"outputs read as probabilities, but on a zero input they are {row.round(4).tolist()}"
            " (not in 0..1 summing to 1)",
            'if the model ends in scores, not softmax: medai.output_kind = "logits"',
        )
