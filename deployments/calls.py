"""Calling another deployment: its client errors pass through, anything else is a 503."""

from __future__ import annotations

import logging
from typing import Any

from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle

from serve_app.errors import MedAIError, ServiceUnavailable

log = logging.getLogger(__name__)


async def call(handle: DeploymentHandle, method: str, *args: Any, unavailable: str) -> Any:
    """``handle.method.remote(*args)``; raises ``ServiceUnavailable(unavailable)`` when the
    deployment fails for any reason other than the caller's own error."""
    try:
        return await getattr(handle, method).remote(*args)
    except RayTaskError as error:
        if isinstance(error.cause, MedAIError):  # a client's error, or the callee's own 503
            raise error.cause from None
        log.error("%s.%s failed: %s", handle.deployment_name, method, type(error.cause).__name__)
        raise ServiceUnavailable(unavailable) from None
    except Exception:
        # NOTE: back-pressure, a dead replica, a lost connection: the outcome is unknown,
        # so the request must not be answered as if it had succeeded.
        log.exception("%s.%s failed", handle.deployment_name, method)
        raise ServiceUnavailable(unavailable) from None
