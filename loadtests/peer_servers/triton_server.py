"""Peer ``triton``: NVIDIA Triton's HTTP front-end (``nvidia-pytriton``) in front of a Python
callable that runs ONNX Runtime, with Triton's dynamic batcher.

Triton serves ``/v2/models/{name}/infer`` with the binary-data extension itself.
Usage: ``python -m loadtests.peer_servers.triton_server HTTP_PORT GRPC_PORT METRICS_PORT``;
``PEER_TRITON_WORKSPACE``: a new folder for PyTriton's workspace (Triton's copy, sockets).
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from loadtests.peer_servers.common import BATCH_WAIT_S, MAX_BATCH, MODEL_NAME, Model

model = Model()


@batch
def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
    return {model.output_name: model.run(inputs[model.input_name])}


def main() -> None:
    http, grpc, metrics = (int(a) for a in sys.argv[1:4])
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=http,
        grpc_address="127.0.0.1",
        grpc_port=grpc,
        metrics_port=metrics,
        allow_metrics=False,
        log_verbose=0,
    )
    dynamic = model.shape[0] is None
    shape = model.shape[1:] if dynamic else model.shape
    out_shape = model.session.get_outputs()[0].shape[1:]
    workspace = os.environ.get("PEER_TRITON_WORKSPACE")  # None: PyTriton picks one
    with Triton(config=config, workspace=workspace) as triton:
        triton.bind(
            model_name=MODEL_NAME,
            infer_func=infer,
            inputs=[Tensor(name=model.input_name, dtype=model.dtype, shape=tuple(shape))],
            outputs=[
                Tensor(
                    name=model.output_name,
                    dtype=np.float32,
                    shape=tuple(d if isinstance(d, int) else -1 for d in out_shape),
                )
            ],
            config=ModelConfig(
                max_batch_size=MAX_BATCH if dynamic else 0,
                batcher=DynamicBatcher(max_queue_delay_microseconds=int(BATCH_WAIT_S * 1e6)),
            ),
            strict=False,
        )
        # NOTE: PyTriton does not stop Triton on SIGTERM; leaving the block does.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print("READY", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
