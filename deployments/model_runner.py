from __future__ import annotations

import asyncio

import numpy as np
import ray
from ray import serve

from serve_app.registry.lifecycle import Lifecycle, ModelState
from serve_app.registry.spec import ModelSpec
from serve_app.registry.store import ModelStore
from serve_app.runtime.batch import split, stack
from serve_app.runtime.onnx_model import OnnxModel
from serve_app.settings import Settings


def rows(tensors: list[np.ndarray]) -> int:
    """A batch's size in images: each request may already carry several."""
    return sum(len(t) for t in tensors)


@serve.deployment(max_ongoing_requests=64)
class ModelRunner:
    """One model version on one ONNX Runtime session per replica, with dynamic batching.

    Requests are (n, ...) tensors already shaped by the preprocessor; concurrent
    ones are stacked into one ONNX Runtime call of up to ``max_batch_size`` images.
    Bound once per served model as the deployment ``model-<name>``.
    """

    def __init__(self, settings: Settings, spec: ModelSpec) -> None:
        self.lifecycle = Lifecycle()
        self.lifecycle.transition(ModelState.LOADING)
        config = settings.model(spec.name)
        assert config is not None, f"{spec.name} is not in settings.models"
        try:
            data = ModelStore(settings.model_store).read_verified(spec)
            self.model = OnnxModel(data, spec, settings.runtime, has_gpu=bool(ray.get_gpu_ids()))
        except Exception:
            self.lifecycle.transition(ModelState.FAILED)
            raise
        # A model with a fixed batch axis takes one request per call.
        self.infer.set_max_batch_size(config.max_batch_size if spec.dynamic_batch else 1)
        self.infer.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self.calls = self.images = self.batches = self.largest_batch = 0
        self.lifecycle.transition(ModelState.READY)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005, batch_size_fn=rows)
    async def infer(self, tensors: list[np.ndarray]) -> list[np.ndarray]:
        batch, sizes = stack(tensors)
        self.calls += len(tensors)
        self.images += len(batch)
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        # NOTE: in throughput-optimized mode user code shares the replica's event
        # loop, so the blocking ONNX Runtime call runs in a thread.
        outputs = await asyncio.to_thread(self.model.run, batch)
        return split(outputs, sizes)

    def state(self) -> ModelState:
        return self.lifecycle.state

    def stats(self) -> dict[str, int]:
        """Batching counters of this replica: calls received, images run, ONNX Runtime runs."""
        return {
            "calls": self.calls,
            "images": self.images,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
        }

    def check_health(self) -> None:
        if not self.lifecycle.ready:
            raise RuntimeError(f"model is {self.lifecycle.state.value}")
