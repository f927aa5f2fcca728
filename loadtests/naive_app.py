"""The same FastAPI app on one uvicorn process with no Ray: the bare peer Serve is measured by.

``uvicorn --factory loadtests.naive_app:app``; models come from ``MEDAI_*``.
"""

from fastapi import FastAPI

from serve_app.auth.credentials import load_credentials
from serve_app.http.app import create_local_app
from serve_app.logs import configure_logging
from serve_app.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_local_app(settings, load_credentials(settings))
