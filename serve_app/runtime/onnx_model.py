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
TENSORRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)

Provider = str | tuple[str, dict[str, str | int | bool]]

ort.set_default_logger_severity(
    3
)  # NOTE: ORT's warnings (e.g. "CUDA absent") go to stderr, not our logs


def wants_gpu(runtime: RuntimeSettings, has_gpu: bool) -> bool:
    return runtime.device == "cuda" or (runtime.device == "auto" and has_gpu)


def providers(runtime: RuntimeSettings, has_gpu: bool) -> list[Provider]:
    """ONNX Runtime's execution providers, in the order it should try them: TensorRT (when
    asked for) and CUDA when the replica wants a GPU, the CPU always last (it runs what
    they cannot, and everything when they cannot start)."""
    available = ort.get_available_providers()
    chosen: list[Provider] = []
    if wants_gpu(runtime, has_gpu):
        if runtime.tensorrt and TENSORRT in available:
            chosen.append((TENSORRT, tensorrt_options(runtime)))
        if CUDA in available:
            chosen.append((CUDA, cuda_options(runtime)))
    return [*chosen, CPU]


def cuda_options(runtime: RuntimeSettings) -> dict[str, str | int | bool]:
    # NOTE: device 0 is the replica's own GPU: Ray sets CUDA_VISIBLE_DEVICES to the GPUs
    # it gave the actor. The arena grows by what is asked, not by doubling, so replicas
    # sharing a GPU do not reserve memory they never use.
    options: dict[str, str | int | bool] = {
        "device_id": 0,
        "arena_extend_strategy": "kSameAsRequested",
    }
    if runtime.gpu_memory_limit_bytes is not None:
        options["gpu_mem_limit"] = runtime.gpu_memory_limit_bytes
    return options


def tensorrt_options(runtime: RuntimeSettings) -> dict[str, str | int | bool]:
    assert runtime.tensorrt_cache_dir is not None, "the runner sets the engine cache"
    return {
        "device_id": 0,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(runtime.tensorrt_cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(runtime.tensorrt_cache_dir),
        "trt_fp16_enable": runtime.tensorrt_fp16,
    }


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
        # NOTE: ONNX Runtime falls back to the CPU, on stderr only, when CUDA or TensorRT
        # cannot start (no driver, missing CUDA libraries): the logs must say where it runs.
        self.execution_provider = self.providers[0]
        self.device = "cuda" if self.execution_provider in GPU_PROVIDERS else "cpu"
        if wants_gpu(runtime, has_gpu) and self.device == "cpu":
            log.warning("%s asked for a GPU but runs on the CPU", spec.ref)
        log.info("loaded %s (%s) on %s", spec.ref, spec.sha256[:12], self.providers)

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.device == "cpu":
            (out,) = self.session.run([self.spec.output_name], {self.spec.input_name: batch})
            return out
        return self.run_bound(batch, self.device)

    def run_bound(self, batch: np.ndarray, device: str) -> np.ndarray:
        """One run with I/O binding, as ONNX Runtime's CUDA guide advises: the batch is
        copied to ``device`` once, the output is allocated there and copied back once.
        The same code runs on the CPU, which is where the tests without a GPU run it."""
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.spec.input_name, np.ascontiguousarray(batch))
        binding.bind_output(self.spec.output_name, device)
        self.session.run_with_iobinding(binding)
        out: np.ndarray = binding.copy_outputs_to_cpu()[0]
        return out
