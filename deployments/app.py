"""The one composition root: ``serve_config.yaml`` points ``import_path`` here."""

from __future__ import annotations

from typing import Any

from ray.serve import Application, Deployment

from deployments.audit_writer import AuditWriter
from deployments.ingress import Ingress
from deployments.model_runner import ModelRunner
from deployments.preprocess import Preprocessor
from deployments.registry import Registry
from serve_app.auth.credentials import check_identity_provider
from serve_app.catalog.store import ModelStore
from serve_app.settings import Settings


def runner_name(model: str) -> str:
    return f"model-{model}"


def deployment(cls: object) -> Deployment:
    """The ``Deployment`` that ``@serve.deployment`` made of a class.

    NOTE: mypy keeps a decorated class's own type (class decorators cannot change it), so
    it cannot see that ``Preprocessor`` is a ``Deployment`` with ``bind`` and ``options``.
    """
    if not isinstance(cls, Deployment):
        raise TypeError(f"{cls!r} is not decorated with @serve.deployment")
    return cls


def build_app(args: dict[str, Any]) -> Application:
    """Ingress -> Preprocessor -> one ModelRunner deployment per served model, and
    Ingress -> AuditWriter (the single writer of results and the audit trail), and
    Ingress -> Registry -> AuditWriter (model versions and their lifecycle), and
    Preprocessor -> AuditWriter (shadow copies' results).

    ``args`` (the application ``args`` in ``serve_config.yaml``) override
    ``MEDAI_*`` environment settings.
    """
    settings = Settings(**args)
    # NOTE: the configuration only: this may run on a node that holds none of the
    # secrets (a cluster gives each node its own); each replica loads and checks its
    # own when it starts, and `medai serve` checks them all before Ray starts.
    check_identity_provider(settings)
    store = ModelStore(settings.model_store)
    specs = {m.name: store.starting(m.name, m.version) for m in settings.models}
    runners = {
        name: deployment(ModelRunner).options(name=runner_name(name)).bind(settings, spec)
        for name, spec in specs.items()
    }
    writer = deployment(AuditWriter).bind(settings) if settings.audit.enabled else None
    registry = deployment(Registry).bind(settings, specs, writer)
    preprocessor = deployment(Preprocessor).bind(settings, specs, runners, registry, writer)
    return deployment(Ingress).bind(settings, preprocessor, writer, registry)
