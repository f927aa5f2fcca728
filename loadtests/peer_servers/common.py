"""What every peer server shares: its ONNX Runtime session and the v2 request checks.

These programs run in the peers' own virtualenvs (``loadtests/peers.py``), so they import
nothing of the platform: only numpy and onnxruntime. Environment:
``PEER_MODEL_PATH`` (the ONNX file), ``PEER_MODEL_NAME`` (the v2 model name),
``PEER_MAX_BATCH`` and ``PEER_BATCH_WAIT_MS`` (batching peers),
``PEER_ORT_THREADS`` (intra-op threads, 0: ONNX Runtime's default).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import onnxruntime as ort

MODEL_PATH = os.environ.get("PEER_MODEL_PATH", "model.onnx")
MODEL_NAME = os.environ.get("PEER_MODEL_NAME", "model")
MAX_BATCH = int(os.environ.get("PEER_MAX_BATCH", "16"))
BATCH_WAIT_S = float(os.environ.get("PEER_BATCH_WAIT_MS", "5")) / 1000
V2_TYPES = {"FP32": "float32", "FP16": "float16", "FP64": "float64", "UINT8": "uint8"}
V2_NAMES = {v: k for k, v in V2_TYPES.items()}
ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
}
MAX_JSON_BYTES = 1 << 20


class BadRequest(ValueError):
    """The request is not one the model can run: answered 400."""


def session() -> ort.InferenceSession:
    """The same session settings as the platform's own (``serve_app/runtime/onnx_model.py``):
    all graph optimisations, ONNX Runtime's own thread count, no spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("PEER_ORT_THREADS", "0"))
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(MODEL_PATH, options, providers=["CPUExecutionProvider"])


class Model:
    """The session and its single input's name, type and shape (``None``: any size)."""

    def __init__(self) -> None:
        self.session = session()
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        self.dtype = np.dtype(ORT_TYPES[inp.type])
        self.shape = [d if isinstance(d, int) else None for d in inp.shape]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def check_shape(self, shape: object) -> list[int]:
        if not isinstance(shape, list) or len(shape) != len(self.shape):
            raise BadRequest(f"shape must have {len(self.shape)} dimensions")
        for got, want in zip(shape, self.shape, strict=True):
            if not isinstance(got, int) or isinstance(got, bool) or got < 1:
                raise BadRequest("shape must be positive integers")
            if want is not None and got != want:
                raise BadRequest(f"shape {shape} does not fit {self.shape}")
        if shape[0] > max(MAX_BATCH, 1) * 4:
            raise BadRequest("batch too large")
        return shape

    def parse(self, body: bytes, header_length: str | None) -> np.ndarray:
        """A v2 request (JSON ``data`` or the binary-data extension) -> the input tensor."""
        if header_length is None:
            header_length = str(len(body))
        if not header_length.isdigit() or int(header_length) > min(len(body), MAX_JSON_BYTES):
            raise BadRequest("Inference-Header-Content-Length must be a length within the body")
        split = int(header_length)
        try:
            header = json.loads(body[:split])
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"malformed JSON: {exc}") from None
        inputs = header.get("inputs") if isinstance(header, dict) else None
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise BadRequest("exactly one input")
        entry = inputs[0]
        if entry.get("name") != self.input_name:
            raise BadRequest(f"the input is {self.input_name!r}")
        if entry.get("datatype") != V2_NAMES.get(self.dtype.name):
            raise BadRequest(f"datatype must be {V2_NAMES.get(self.dtype.name)}")
        shape = self.check_shape(entry.get("shape"))
        nbytes = math.prod(shape) * self.dtype.itemsize
        params = entry.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is None:
            data = entry.get("data")
            if not isinstance(data, list) or len(data) != math.prod(shape):
                raise BadRequest("data must hold one value per element")
            try:
                return np.asarray(data, dtype=self.dtype).reshape(shape)
            except (TypeError, ValueError) as exc:
                raise BadRequest(f"bad data: {exc}") from None
        if not isinstance(size, int) or size != nbytes or split + size != len(body):
            raise BadRequest("binary_data_size must be the tensor's size and the body's rest")
        return np.frombuffer(body, dtype=self.dtype, offset=split).reshape(shape)

    def answer(self, y: np.ndarray) -> dict:
        return {
            "model_name": MODEL_NAME,
            "outputs": [
                {
                    "name": self.output_name,
                    "datatype": V2_NAMES.get(y.dtype.name, "FP32"),
                    "shape": list(y.shape),
                    "data": y.ravel().tolist(),
                }
            ],
        }
