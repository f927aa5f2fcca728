from __future__ import annotations

import asyncio
import time

import numpy as np
import ray
from ray import serve

from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.store import ModelStore
from serve_app.logs import configure_logging
from serve_app.registry.lifecycle import Lifecycle, ModelState
from serve_app.runtime.batch import split, stack
from serve_app.runtime.combiner import Combiner
from serve_app.runtime.versions import LoadedVersions
from serve_app.runtime.workdir import enter_empty_directory
from serve_app.settings import Settings


@serve.deployment(max_ongoing_requests=64)
class ModelRunner:
    """One model's versions on ONNX Runtime sessions per replica, with dynamic batching.

    Requests are (n, ...) tensors already shaped by the preprocessor for a version
    named by its file hash. The combiner is the one batcher: it runs every request that
    queued while the model was busy (an idle model waits ``batch_wait_timeout_s`` for
    company) as one ONNX Runtime call of up to ``max_batch_size`` images per version,
    ``max_concurrent_batches`` calls at a time. A version not loaded yet is loaded
    (hash verified) on its first request, so a hot swap needs no restart. Bound once
    per served model as the deployment ``model-<name>``.
    """

    def __init__(self, settings: Settings, spec: ModelSpec) -> None:
        configure_logging(settings.log_level)
        self.lifecycle = Lifecycle()
        self.lifecycle.transition(ModelState.LOADING)
        config = settings.model(spec.name)
        assert config is not None, f"{spec.name} is not in settings.models"
        runtime = settings.runtime
        if config.intra_op_threads is not None:
            runtime = runtime.model_copy(update={"intra_op_threads": config.intra_op_threads})
        store = ModelStore(settings.model_store.resolve())
        enter_empty_directory()  # before any session: a relative path resolves to nothing
        self.versions = LoadedVersions(store, runtime, has_gpu=bool(ray.get_gpu_ids()))
        try:
            self.versions.load(spec)  # the version serving at start; others load on demand
        except Exception:
            self.lifecycle.transition(ModelState.FAILED)
            raise
        # NOTE: a fixed batch axis takes one image per call.
        max_rows = config.max_batch_size if spec.dynamic_batch else 1
        self.combiner = Combiner(
            self._run,
            max_rows,
            slots=config.max_concurrent_batches,
            wait_s=config.batch_wait_timeout_s,
        )
        self.calls = self.images = self.batches = self.largest_batch = 0
        self.run_seconds = 0.0
        self.lifecycle.transition(ModelState.READY)

    async def infer(self, tensor: np.ndarray, sha256: str) -> np.ndarray:
        """Output rows of an (n, ...) tensor, run by the version with that file hash (during
        a hot swap there are two in flight; they never share a run)."""
        return await self.combiner.submit(sha256, tensor)

    async def _run(self, sha256: str, tensors: list[np.ndarray]) -> list[np.ndarray]:
        model = await self.versions.get(sha256)
        batch, sizes = stack(tensors)
        self.calls += len(tensors)
        self.images += len(batch)
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        # NOTE: in throughput-optimized mode user code shares the replica's event
        # loop, so the blocking ONNX Runtime call runs in a thread.
        started = time.perf_counter()
        outputs = await asyncio.to_thread(model.run, batch)
        self.run_seconds += time.perf_counter() - started
        return split(outputs, sizes)

    def state(self) -> ModelState:
        return self.lifecycle.state

    def stats(self) -> dict[str, float]:
        """Counters of this replica: calls received, images run, ONNX Runtime runs and seconds;
        and images waiting now."""
        return {
            "queued": self.combiner.queued,
            "calls": self.calls,
            "images": self.images,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
            "run_seconds": round(self.run_seconds, 3),
        }

    def check_health(self) -> None:
        if not self.lifecycle.ready:
            raise RuntimeError(f"model is {self.lifecycle.state.value}")
