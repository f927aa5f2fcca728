from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from serve_app.catalog.spec import Layout
from serve_app.errors import InvalidInput
from serve_app.runtime import onnx_model
from serve_app.runtime.examine import inspect_model
from serve_app.runtime.onnx_model import CPU, CUDA, TENSORRT, OnnxModel, providers
from serve_app.settings import RuntimeSettings
from tests.unit.onnx_builders import (
    model_bytes,
    three_d_input_model,
    tiny_classifier,
    two_input_model,
)


def rejection(data: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        inspect_model(data, "m", "1")
    assert info.value.field == "file"
    return info.value


def test_nhwc_model_spec() -> None:
    data = tiny_classifier(["N", 64, 64, 3], layout="NHWC")

    spec = inspect_model(data, "derm", "2")

    assert spec.ref == "derm:2"
    assert spec.sha256 == hashlib.sha256(data).hexdigest()
    assert spec.size_bytes == len(data)
    assert spec.input_name == "image"
    assert spec.input_shape == [None, 64, 64, 3]
    assert spec.input_dtype == "float32"
    assert spec.layout is Layout.NHWC
    assert (spec.channels, spec.height, spec.width) == (3, 64, 64)
    assert spec.dynamic_batch
    assert spec.output_name == "probabilities"
    assert spec.output_shape == [None, 2]


def test_nchw_grey_model_spec() -> None:
    spec = inspect_model(tiny_classifier([1, 1, 96, 80]), "chest", "1")

    assert spec.layout is Layout.NCHW
    assert spec.input_shape == [1, 1, 96, 80]
    assert (spec.channels, spec.height, spec.width) == (1, 96, 80)
    assert not spec.dynamic_batch


def test_metadata_is_read_from_the_file() -> None:
    data = tiny_classifier(
        [None, 3, 64, 64],
        labels=["benign", "melanoma", "nevus"],
        metadata={"medai.threshold": 0.6, "medai.positive_index": 1, "medai.output_kind": "logits"},
    )

    meta = inspect_model(data, "derm", "1").metadata

    assert meta.labels == ["benign", "melanoma", "nevus"]
    assert meta.threshold == 0.6
    assert meta.positive_index == 1
    assert meta.output_kind == "logits"


def test_declared_layout_overrides_the_guess() -> None:
    # 3 x 64 x 3: both axis 1 and axis 3 could be channels; the guess would be NCHW.
    data = tiny_classifier([None, 64, 64, 3], layout="NHWC", metadata={"medai.layout": "NHWC"})

    assert inspect_model(data, "m", "1").layout is Layout.NHWC


def test_uint8_input_model_is_accepted() -> None:
    spec = inspect_model(tiny_classifier([1, 3, 64, 64], input_type=TensorProto.UINT8), "m", "1")

    assert spec.input_dtype == "uint8"


def test_bytes_that_are_not_onnx_are_rejected() -> None:
    assert rejection(b"this is not a protobuf model at all").rule == "onnx"


def test_ir_version_14_is_rejected() -> None:
    error = rejection(tiny_classifier([1, 3, 64, 64], ir_version=14))

    assert error.rule == "onnx"
    assert "IR version 13" in error.detail


def test_two_inputs_are_rejected() -> None:
    assert rejection(two_input_model()).rule == "model-input"


def test_three_d_input_is_rejected() -> None:
    assert rejection(three_d_input_model()).rule == "model-input"


def test_no_channel_axis_is_rejected() -> None:
    assert rejection(tiny_classifier([1, 64, 64, 64], outputs=2)).rule == "model-input"


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ([1, 3, "height", 64], "NCHW"),
        ([1, 3, 64, "width"], "NCHW"),
        ([None, "height", "width", 3], "NHWC"),
    ],
)
def test_dynamic_spatial_dimensions_are_rejected(shape: list[int | str], layout: str) -> None:
    error = rejection(tiny_classifier(shape, layout=layout))

    assert error.rule == "model-input"
    assert "fixed" in error.detail


def test_output_width_must_match_the_labels() -> None:
    error = rejection(tiny_classifier([1, 3, 64, 64], labels=["a", "b", "c"], outputs=2))

    assert error.rule == "model-output"
    assert "3 labels" in error.detail


@pytest.mark.parametrize("index", [2, -1])
def test_positive_index_must_be_an_output_index(index: int) -> None:
    data = tiny_classifier([1, 3, 64, 64], metadata={"medai.positive_index": index})

    assert rejection(data).rule == "model-metadata"


def test_bad_metadata_is_rejected() -> None:
    data = tiny_classifier([1, 3, 64, 64], metadata={"medai.threshold": 1.5})

    assert rejection(data).rule == "model-metadata"


def test_model_that_fails_on_a_zero_input_is_rejected() -> None:
    # 3*64*64 values cannot be reshaped into rows of 5: fails at run time, not at load.
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["image", "shape"], ["probabilities"])],
        "fails",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 5])],
        initializer=[numpy_helper.from_array(np.array([-1, 5], dtype=np.int64), "shape")],
    )

    assert rejection(model_bytes(graph)).rule == "model-run"


@pytest.mark.parametrize(
    "metadata",
    [{"medai.mean": [0.5, 0.5, 0.5]}, {"medai.std": [0.2, 0.2]}],
    ids=["mean", "std"],
)
def test_normalisation_must_match_the_channels(metadata: dict[str, object]) -> None:
    data = tiny_classifier([1, 1, 64, 64], metadata=metadata)

    assert rejection(data).rule == "model-metadata"


def test_run_equals_a_direct_onnxruntime_session() -> None:
    data = tiny_classifier([None, 3, 64, 64], labels=["a", "b", "c"])
    spec = inspect_model(data, "m", "1")
    batch = np.random.default_rng(3).random((4, 3, 64, 64), dtype=np.float32)
    direct = ort.InferenceSession(data, providers=[CPU])
    (expected,) = direct.run(None, {"image": batch})

    out = OnnxModel(data, spec, RuntimeSettings(device="cpu")).run(batch)

    assert out.shape == (4, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert len({tuple(row) for row in out.round(6)}) == 4  # distinct images, distinct rows


def test_onnx_model_on_cpu_uses_only_the_cpu() -> None:
    data = tiny_classifier([None, 3, 64, 64])
    model = OnnxModel(data, inspect_model(data, "m", "1"), RuntimeSettings(device="cpu"), True)

    assert model.providers == [CPU]


def names(chosen: list[onnx_model.Provider]) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in chosen]


@pytest.fixture
def gpu_providers_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_model.ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])


@pytest.fixture
def cuda_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_model.ort, "get_available_providers", lambda: [CPU])


@pytest.mark.usefixtures("gpu_providers_installed")
@pytest.mark.parametrize(
    ("device", "has_gpu", "expected"),
    [
        ("auto", False, [CPU]),
        ("auto", True, [CUDA, CPU]),
        ("cpu", False, [CPU]),
        ("cpu", True, [CPU]),
        ("cuda", False, [CUDA, CPU]),
        ("cuda", True, [CUDA, CPU]),
    ],
)
def test_providers_when_cuda_is_installed(device: str, has_gpu: bool, expected: list[str]) -> None:
    assert names(providers(RuntimeSettings(device=device), has_gpu)) == expected


@pytest.mark.usefixtures("gpu_providers_installed")
def test_tensorrt_goes_ahead_of_cuda_with_its_engine_cache(tmp_path: Path) -> None:
    runtime = RuntimeSettings(tensorrt=True, tensorrt_fp16=True, tensorrt_cache_dir=tmp_path)

    chosen = providers(runtime, has_gpu=True)

    assert names(chosen) == [TENSORRT, CUDA, CPU]
    trt_options = dict(chosen[0][1])
    assert trt_options["trt_engine_cache_enable"] is True
    assert trt_options["trt_engine_cache_path"] == str(tmp_path)
    assert trt_options["trt_fp16_enable"] is True
    assert names(providers(runtime, has_gpu=False)) == [CPU]  # TensorRT is a GPU's


@pytest.mark.usefixtures("gpu_providers_installed")
def test_replicas_sharing_a_gpu_can_bound_cudas_memory() -> None:
    limited = RuntimeSettings(gpu_memory_limit_bytes=2 * 1024**3)

    (cuda, _) = providers(limited, has_gpu=True)

    assert cuda[1]["gpu_mem_limit"] == 2 * 1024**3
    assert cuda[1]["arena_extend_strategy"] == "kSameAsRequested"
    (unlimited, _) = providers(RuntimeSettings(), has_gpu=True)
    assert "gpu_mem_limit" not in unlimited[1]


@pytest.mark.usefixtures("cuda_missing")
@pytest.mark.parametrize("device", ["auto", "cpu", "cuda"])
def test_providers_fall_back_to_cpu_without_cuda(device: str) -> None:
    assert providers(RuntimeSettings(device=device, tensorrt=True), has_gpu=True) == [CPU]


def test_providers_with_the_real_onnxruntime() -> None:
    assert providers(RuntimeSettings(), has_gpu=False) == [CPU]
    assert providers(RuntimeSettings(device="cpu"), has_gpu=True) == [CPU]


def test_a_replica_that_cannot_start_cuda_runs_on_the_cpu_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # NOTE: this machine has onnxruntime-gpu without CUDA's libraries or a GPU: ONNX
    # Runtime itself falls back, and only the model's own record tells where it runs.
    data = tiny_classifier([None, 3, 64, 64])
    spec = inspect_model(data, "m", "1")

    with caplog.at_level("WARNING", logger=onnx_model.log.name):
        model = OnnxModel(data, spec, RuntimeSettings(device="cuda"), has_gpu=True)

    assert (model.execution_provider, model.device) == (CPU, "cpu")
    assert "m:1 asked for a GPU but runs on the CPU" in caplog.text


def test_a_run_with_io_binding_answers_as_a_plain_run() -> None:
    data = tiny_classifier([None, 3, 64, 64])
    model = OnnxModel(data, inspect_model(data, "m", "1"), RuntimeSettings(device="cpu"))
    batch = np.random.default_rng(7).random((3, 3, 64, 64), dtype=np.float32)

    bound = model.run_bound(batch[:, :, ::-1, :], "cpu")  # a strided view, as slicing makes

    np.testing.assert_allclose(bound, model.run(batch[:, :, ::-1, :].copy()), rtol=1e-6)
    assert bound.shape[0] == 3
