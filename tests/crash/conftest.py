"""Crash tests run the server as ``medai serve`` would, in its own process session."""

from tests.storage.conftest import database_url  # noqa: F401  (both databases here too)
