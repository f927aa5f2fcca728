"""One model's runner: its versions on ONNX Runtime sessions, behind one batcher."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.store import ModelStore
from serve_app.runtime.batch import split, stack
from serve_app.runtime.combiner import Combiner
from serve_app.runtime.lifecycle import Lifecycle, ModelState, RunnerStatus
from serve_app.runtime.versions import LoadedVersions
from serve_app.settings import Settings


class Runner:
    """One model's versions on ONNX Runtime sessions, with dynamic batching.

    Requests are (n, ...) tensors already shaped for a version named by its file hash.
    The combiner is the one batcher: it runs every request that queued while the model
    was busy (an idle model waits ``batch_wait_timeout_s`` for company) as one ONNX
    Runtime call of up to ``max_batch_size`` images per version,
    ``max_concurrent_batches`` calls at a time. A version not loaded yet is loaded (hash
    verified) on its first request, so a hot swap needs no restart. The ``ModelRunner``
    deployment is this class made remote; the in-process app holds one per model.
    """

    def __init__(self, settings: Settings, spec: ModelSpec, has_gpu: bool = False) -> None:
        self.lifecycle = Lifecycle()
        self.lifecycle.transition(ModelState.LOADING)
        config = settings.model(spec.name)
        assert config is not None, f"{spec.name} is not in settings.models"
        runtime = settings.runtime
        if config.intra_op_threads is not None:
            runtime = runtime.model_copy(update={"intra_op_threads": config.intra_op_threads})
        if runtime.tensorrt_cache_dir is None:
            engines = settings.data_dir / "tensorrt-engines"
            runtime = runtime.model_copy(update={"tensorrt_cache_dir": engines})
        self.versions = LoadedVersions(ModelStore(settings.model_store), runtime, has_gpu)
        try:
            # the version serving at start; others load on demand, on the same providers
            self.execution_provider = self.versions.load(spec).execution_provider
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
        # NOTE: the blocking ONNX Runtime call runs in a thread, off the event loop that
        # queues the next batch (in a Serve replica, the one its requests share too).
        started = time.perf_counter()
        outputs = await asyncio.to_thread(model.run, batch)
        self.run_seconds += time.perf_counter() - started
        return split(outputs, sizes)

    def status(self) -> RunnerStatus:
        return RunnerStatus(self.lifecycle.state, self.execution_provider)

    def stats(self) -> dict[str, float]:
        """Counters of this runner: calls received, images run, ONNX Runtime runs and
        seconds; and images waiting now."""
        return {
            "queued": self.combiner.queued,
            "calls": self.calls,
            "images": self.images,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
            "run_seconds": round(self.run_seconds, 3),
        }
