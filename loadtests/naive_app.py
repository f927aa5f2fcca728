"""The same FastAPI app on one uvicorn process with no Ray: the bare peer Serve is measured by.

``uvicorn --factory loadtests.naive_app:app``; models come from ``MEDAI_*``.
"""

from fastapi import FastAPI

from serve_app.audit.trail import DisabledTrail, MemoryTrail
from serve_app.auth.credentials import load_credentials
from serve_app.backend import LocalBackend
from serve_app.http.app import create_app
from serve_app.logs import configure_logging
from serve_app.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    trail = MemoryTrail() if settings.audit.enabled else DisabledTrail()
    return create_app(settings, LocalBackend(settings), trail, load_credentials(settings))
