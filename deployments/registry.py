"""The registry deployment: the model registry made remote (one replica owns the catalog)."""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.audit_writer import trail_of
from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.store import ModelStore
from serve_app.logs import configure_logging
from serve_app.registry.registry import ModelRegistry
from serve_app.routing.plan import ServingPlan
from serve_app.runtime.inspection import InspectionLimits
from serve_app.runtime.workdir import enter_empty_directory
from serve_app.settings import Settings

UNAVAILABLE = "the model registry is unavailable; nothing was changed"
"""What the ingress answers when the registry itself does not (see ``Remote``)."""


@serve.deployment(num_replicas=1, max_ongoing_requests=16)
class Registry(ModelRegistry):
    """Registers model versions into the store and moves them through their lifecycle.

    Exactly one replica, so that checking a change against the records and recording it
    happen one at a time; every change is committed with its audit entry by the writer.
    """

    def __init__(
        self,
        settings: Settings,
        specs: dict[str, ModelSpec],
        audit_writer: DeploymentHandle | None,
    ) -> None:
        configure_logging(settings.log_level)
        store = ModelStore(settings.model_store.resolve())
        enter_empty_directory()
        super().__init__(
            store,
            trail_of(audit_writer, settings.audit),
            specs,
            max_loaded_versions=settings.runtime.max_loaded_versions,
            inspection=InspectionLimits.of(settings.limits),
        )
        # NOTE: without records (audit.enabled false, benchmarks) nothing can be promoted.
        self.fixed = ServingPlan(dict(specs)) if audit_writer is None else None

    async def serving(self) -> ServingPlan:
        """What answers now: versions and routes (the preprocessors poll this)."""
        return self.fixed if self.fixed is not None else await super().serving()
