"""Structured (JSON) logs: one line per event, tied to its request, free of PHI and secrets.

Log calls pass facts as ``extra`` fields (``log.info("inference", extra={...})``);
the request id is added to every line from the context of the request being served.
Never log pixels, tokens, or clear-text patient ids: ``Pseudonymizer`` turns a
patient id into a keyed hash that links a patient's lines without revealing them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

LOGGERS = ("serve_app", "deployments")
"""Our loggers: every module logs through ``logging.getLogger(__name__)`` below these."""

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(level: str = "INFO", stream: TextIO = sys.stderr) -> logging.Handler:
    """Send our loggers' records to ``stream`` as JSON lines; calling again replaces the handler."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_RequestIdFilter())
    handler.set_name("medai-json")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "medai-json"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False  # one line per event, not again in Ray's own format
    return handler


PSEUDONYM = re.compile(r"pt_[0-9a-f]{20}")
"""What ``Pseudonymizer`` makes of a patient id; nothing else is stored."""


class Pseudonymizer:
    """``pt_`` + a truncated HMAC-SHA256 of the patient id under a key the logs never hold."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, patient_id: str | None) -> str | None:
        if patient_id is None:
            return None
        digest = hmac.new(self._key, patient_id.encode(), hashlib.sha256).hexdigest()
        return "pt_" + digest[:20]
