"""Calling another deployment: its client errors pass through, anything else is a 503."""

from __future__ import annotations

import logging
from typing import Any

from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle

from serve_app.errors import MedAIError, ServiceUnavailable

log = logging.getLogger(__name__)


async def call(
    handle: DeploymentHandle,
    method: str,
    *args: Any,
    unavailable: str,
    error: type[ServiceUnavailable] = ServiceUnavailable,
) -> Any:
    """``handle.method.remote(*args)``; raises ``error(unavailable)`` when the deployment
    fails for any reason other than the caller's own error (or its own 503)."""
    try:
        return await getattr(handle, method).remote(*args)
    except Exception as failure:
        # NOTE: Ray's default transport wraps the callee's exception in a RayTaskError;
        # the throughput-optimized one raises it as it was.
        cause = failure.cause if isinstance(failure, RayTaskError) else failure
        if isinstance(cause, MedAIError):  # a client's error, or the callee's own 503
            raise cause from None
        # NOTE: back-pressure, a dead replica, a lost connection, a bug: the outcome is
        # unknown, so the request must not be answered as if it had succeeded.
        log.error("%s.%s failed: %s", handle.deployment_name, method, type(cause).__name__)
        raise error(unavailable) from None
