"""ONNX Runtime sessions: the only code that imports onnxruntime."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort

from serve_app.catalog.spec import ModelSpec
from serve_app.errors import InvalidInput
from serve_app.runtime.onnx_guard import refuse_external_data
from serve_app.settings import RuntimeSettings

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

ort.set_default_logger_severity(
    3
)  # NOTE: ORT's warnings (e.g. "CUDA absent") go to stderr, not our logs


def providers(runtime: RuntimeSettings, has_gpu: bool) -> list[str]:
    """CUDA first when asked for (or ``auto`` and this replica owns a GPU), CPU always last."""
    want_cuda = runtime.device == "cuda" or (runtime.device == "auto" and has_gpu)
    if want_cuda and CUDA in ort.get_available_providers():
        return [CUDA, CPU]
    return [CPU]


def session_options(runtime: RuntimeSettings) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = runtime.intra_op_threads
    options.inter_op_num_threads = runtime.inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # NOTE: ORT's idle worker threads spin by default; on a shared CPU that spinning
    # steals the cores the other replicas need, so they sleep instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def open_session(
    data: bytes, runtime: RuntimeSettings | None = None, has_gpu: bool = False
) -> ort.InferenceSession:
    """A session of the ONNX file ``data``, refused first if it would read other files."""
    runtime = runtime or RuntimeSettings()
    # NOTE: every session, whoever asks: a file stored before this check existed is
    # refused here too, before ONNX Runtime resolves a single path.
    refuse_external_data(data)
    try:
        return ort.InferenceSession(
            data, sess_options=session_options(runtime), providers=providers(runtime, has_gpu)
        )
    except Exception as exc:  # ORT raises its own untyped Fail/InvalidProtobuf/InvalidGraph
        if out_of_memory(exc):
            raise InvalidInput(
                "loading the model ran out of memory", field="file", rule="memory-limit"
            ) from None
        raise InvalidInput(
            "file is not an ONNX model ONNX Runtime can load (it reads IR version 13 or older): "
            + type(exc).__name__,
            field="file",
            rule="onnx",
        ) from None


def out_of_memory(exc: BaseException) -> bool:
    """ONNX Runtime reports a failed allocation as an untyped error; its text tells."""
    text = str(exc)
    return isinstance(exc, MemoryError) or any(
        sign in text for sign in ("bad_alloc", "bad allocation", "Failed to allocate")
    )


class OnnxModel:
    """One ONNX Runtime session for one model version."""

    def __init__(
        self, data: bytes, spec: ModelSpec, runtime: RuntimeSettings, has_gpu: bool = False
    ) -> None:
        self.spec = spec
        self.session = open_session(data, runtime, has_gpu)
        self.providers = self.session.get_providers()
        log.info("loaded %s (%s) on %s", spec.ref, spec.sha256[:12], self.providers)

    def run(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self.session.run([self.spec.output_name], {self.spec.input_name: batch})
        return out
