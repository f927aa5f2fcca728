"""The model versions one process keeps loaded, by file hash, loaded on first use.

A request names the hash of the version its tensor was prepared for, so a hot swap
never sends a tensor to a version it was not shaped for: the old version keeps
answering what was prepared for it while the new one takes over. Loading verifies the
file's SHA-256 first (``ModelStore.read_verified``); a tampered file is refused.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.store import ModelStore
from serve_app.runtime.onnx_guard import refuse_stored_external_data
from serve_app.runtime.onnx_model import OnnxModel
from serve_app.settings import RuntimeSettings


class LoadedVersions:
    def __init__(self, store: ModelStore, runtime: RuntimeSettings, has_gpu: bool = False) -> None:
        self.store = store
        self.runtime = runtime
        self.has_gpu = has_gpu
        self._loaded: OrderedDict[str, OnnxModel] = OrderedDict()
        self._loading: dict[str, asyncio.Future[OnnxModel]] = {}

    def load(self, spec: ModelSpec) -> OnnxModel:
        """Load ``spec`` now (blocking); raises ``TamperedModel`` on a hash mismatch or a
        file with external data (stored before uploads were checked for it)."""
        data = self.store.read_verified(spec)
        refuse_stored_external_data(data, spec.ref)
        model = OnnxModel(data, spec, self.runtime, self.has_gpu)
        self._keep(spec.sha256, model)
        return model

    async def get(self, sha256: str) -> OnnxModel:
        """The loaded version with this file hash, loading it (once) if needed."""
        if (model := self._loaded.get(sha256)) is not None:
            self._loaded.move_to_end(sha256)
            return model
        if (pending := self._loading.get(sha256)) is not None:
            return await pending
        future: asyncio.Future[OnnxModel] = asyncio.get_running_loop().create_future()
        self._loading[sha256] = future
        try:
            spec = self.store.by_hash(sha256)
            model = await asyncio.to_thread(self.load, spec)
            future.set_result(model)
            return model
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # NOTE: marks it retrieved when nobody else awaited it
            raise
        finally:
            del self._loading[sha256]

    def _keep(self, sha256: str, model: OnnxModel) -> None:
        self._loaded[sha256] = model
        self._loaded.move_to_end(sha256)
        while len(self._loaded) > self.runtime.max_loaded_versions:
            self._loaded.popitem(last=False)

    @property
    def hashes(self) -> list[str]:
        """Loaded versions, least recently used first."""
        return list(self._loaded)
