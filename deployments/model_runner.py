"""The model runner made remote: one deployment ``model-<name>`` per served model."""

from __future__ import annotations

import ray
from ray import serve

from serve_app.catalog.spec import ModelSpec
from serve_app.logs import configure_logging
from serve_app.runtime.runner import Runner
from serve_app.runtime.workdir import enter_empty_directory
from serve_app.settings import Settings


@serve.deployment(max_ongoing_requests=64)
class ModelRunner(Runner):
    """``Runner`` in a replica of its own, on a GPU where Ray gave it one."""

    def __init__(self, settings: Settings, spec: ModelSpec) -> None:
        configure_logging(settings.log_level)
        # NOTE: the store's path is fixed before the replica leaves its working directory
        # for an empty one, before any session: a relative path in a model resolves to nothing.
        settings = settings.model_copy(update={"model_store": settings.model_store.resolve()})
        enter_empty_directory()
        super().__init__(settings, spec, has_gpu=bool(ray.get_gpu_ids()))

    def check_health(self) -> None:
        if not self.lifecycle.ready:
            raise RuntimeError(f"model is {self.lifecycle.state.value}")
