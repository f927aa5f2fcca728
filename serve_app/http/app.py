"""The FastAPI application factory (no module-global app)."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.backend import Backend
from serve_app.http.middleware import BodySizeLimit
from serve_app.http.problems import install_problem_handlers
from serve_app.http.routes import build_router
from serve_app.settings import Settings


def create_app(settings: Settings, backend: Backend) -> FastAPI:
    app = FastAPI(
        title="MedAI Flow",
        version="0.1.0",
        description="Inference on medical images with ONNX models served by Ray Serve.",
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes)
    app.include_router(build_router(settings, backend))
    return app
