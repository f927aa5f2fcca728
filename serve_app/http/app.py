"""The FastAPI application factory (no module-global app)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.audit.trail import AuditTrail, DisabledTrail
from serve_app.auth.credentials import Credentials
from serve_app.auth.keys import KeyRing
from serve_app.auth.tokens import TokenVerifier
from serve_app.backend import Backend
from serve_app.http.auth_failures import FailedAuthentications
from serve_app.http.console import PREFIX as CONSOLE_PREFIX
from serve_app.http.console import install_console
from serve_app.http.metrics import Metrics
from serve_app.http.middleware import BodySizeLimit, RequestContext
from serve_app.http.preview_routes import build_preview_router
from serve_app.http.problems import install_problem_handlers
from serve_app.http.records import build_records_router
from serve_app.http.registry_routes import build_registry_router
from serve_app.http.routes import build_router
from serve_app.http.routing_routes import build_routing_router
from serve_app.http.security import Authenticate
from serve_app.http.v2_routes import PUBLIC_PATHS as V2_PUBLIC_PATHS
from serve_app.http.v2_routes import build_v2_router
from serve_app.logs import Pseudonymizer
from serve_app.ratelimit import TokenBuckets
from serve_app.registry.registry import ModelRegistry
from serve_app.settings import Settings

VERSION = "0.1.0"


def create_app(
    settings: Settings,
    backend: Backend,
    trail: AuditTrail,
    registry: ModelRegistry,
    credentials: Credentials,
    metrics: Metrics | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The app over ``backend``, ``trail`` and ``registry`` (in this process, or Serve
    handles); ``metrics``: counters this replica shares with its backend; ``lifespan``:
    what opens and closes the parts this app owns."""
    # NOTE: no schema or docs in production unless asked for: they map the attack surface.
    docs: dict[str, Any] = (
        {} if settings.docs_served else {"openapi_url": None, "docs_url": None, "redoc_url": None}
    )
    app = FastAPI(
        title="MedAI Flow",
        version=VERSION,
        description="Inference on medical images with ONNX models served by Ray Serve.",
        lifespan=lifespan,
        **docs,
    )
    install_problem_handlers(app)
    assert credentials.pseudonym_key is not None  # load_credentials guarantees it
    pseudonymize = Pseudonymizer(credentials.pseudonym_key.get_secret_value().encode())
    metrics = metrics or Metrics()
    app.include_router(build_router(settings, backend, trail, pseudonymize, metrics))
    app.include_router(build_preview_router(backend))
    app.include_router(build_records_router(trail))
    app.include_router(build_registry_router(registry))
    app.include_router(build_routing_router(registry))
    app.include_router(
        build_v2_router(settings, backend, trail, registry, pseudonymize, metrics, VERSION)
    )
    install_console(app, settings)
    # NOTE: the middleware added last runs first. Requests pass RequestContext (id, log
    # line), then Authenticate, then BodySizeLimit: no body is read before the caller is known.
    limit = settings.rate_limit
    buckets = (
        TokenBuckets(limit.requests_per_second, limit.burst) if settings.rate_limited else None
    )
    strangers = (
        TokenBuckets(limit.unauthenticated_per_second, limit.unauthenticated_burst)
        if settings.rate_limited
        else None
    )
    failures = FailedAuthentications(
        trail, settings.auth.failure_window_s, settings.auth.max_failure_keys, metrics
    )
    verifier = TokenVerifier(settings.auth, KeyRing.from_settings(settings.auth, credentials))
    limits = settings.limits
    json_limit = (
        min(limits.max_json_body_bytes, limits.max_body_bytes),
        "limits.max_json_body_bytes",
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=limits.max_body_bytes,
        per_path={
            "/models": (limits.max_model_bytes, "limits.max_model_bytes"),
            "/infer": json_limit,
            "/infer/batch": json_limit,
        },
    )
    app.add_middleware(
        Authenticate,
        verifier=verifier,
        buckets=buckets,
        public_paths={
            "/healthz",
            "/readyz",
            *V2_PUBLIC_PATHS,
            *(["/metrics"] if settings.metrics_public else []),
            *docs_paths(app),
            CONSOLE_PREFIX,
        },
        # The console's static files: a browser navigating to them sends no token.
        public_prefixes=(CONSOLE_PREFIX + "/",),
        metrics=metrics,
        failures=failures,
        strangers=strangers,
    )
    app.add_middleware(RequestContext, metrics=metrics)
    return app


def docs_paths(app: FastAPI) -> set[str]:
    urls = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    return {url for url in urls if url}


def create_local_app(
    settings: Settings,
    credentials: Credentials,
    trail: DatabaseTrail | DisabledTrail | None = None,
    rng: random.Random | None = None,
) -> FastAPI:
    """The same app with everything in this process: models, registry and trail. For
    tests, and as the bare peer the benchmarks measure Ray by; ``rng`` draws the A/B arms
    (tests seed it).

    The trail (by default the database ``settings`` name, private to this app, or none
    when ``audit.enabled`` is false) opens when the app starts and closes when it stops.
    """
    from serve_app.backend import LocalBackend
    from serve_app.catalog.store import ModelStore
    from serve_app.registry.registry import ModelRegistry
    from serve_app.runtime.inspection import InspectionLimits
    from serve_app.shadows import ShadowCopies

    if trail is None:
        enabled = settings.audit.enabled
        trail = DatabaseTrail(settings, process_wide=False) if enabled else DisabledTrail()
    metrics = Metrics()
    shadows = ShadowCopies(
        trail,
        lambda outcome: metrics.shadows.labels(outcome).inc(),
        settings.registry.max_shadows_in_flight,
    )
    backend = LocalBackend(settings, shadows, rng)
    store = ModelStore(settings.model_store)
    registry = ModelRegistry(
        store,
        trail,
        backend.specs,
        on_change=backend.pipeline.follow,
        max_loaded_versions=settings.runtime.max_loaded_versions,
        inspection=InspectionLimits.of(settings.limits),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if isinstance(trail, DisabledTrail):
            yield
            return
        await trail.start()
        try:
            yield
        finally:
            await shadows.drain()
            await trail.close()

    return create_app(settings, backend, trail, registry, credentials, metrics, lifespan)
