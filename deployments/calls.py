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
    except Exception as error:
        # NOTE: Ray's default transport wraps the callee's exception in a RayTaskError;
        # the throughput-optimized one raises it as it was.
        cause = error.cause if isinstance(error, RayTaskError) else error
        if isinstance(cause, MedAIError):  # a client's error, or the callee's own 503
            raise cause from None
        # NOTE: back-pressure, a dead replica, a lost connection, a bug: the outcome is
        # unknown, so the request must not be answered as if it had succeeded.
        log.error("%s.%s failed: %s", handle.deployment_name, method, type(cause).__name__)
        raise ServiceUnavailable(unavailable) from None
