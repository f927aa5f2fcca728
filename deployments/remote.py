"""Calling another deployment as if it were the core class it serves.

``Remote(handle, ...).result(id)`` is ``handle.result.remote(id)``: no forwarder is
written per method. The callee's own errors (a client's 4xx, its own 503) pass through;
anything else (back-pressure, a dead replica, a lost connection, a bug, no answer within
``timeout_s``) becomes one 503, since its outcome is unknown.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle

from deployments.hops import Hop
from serve_app.errors import MedAIError, ServiceUnavailable

log = logging.getLogger(__name__)


def payload_bytes(args: tuple[Any, ...]) -> int:
    """Bytes of the arguments that can be large: files (a model upload)."""
    return sum(len(a) for a in args if isinstance(a, bytes | bytearray))


class Remote:
    def __init__(
        self,
        handle: DeploymentHandle,
        unavailable: str,
        timeout_s: float | None = None,
    ) -> None:
        self._hop = Hop(handle)
        self._unavailable = unavailable
        self._timeout_s = timeout_s

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)
        return functools.partial(self._call, method)

    async def _call(
        self,
        method: str,
        *args: Any,
        unavailable: str | None = None,
        error: type[ServiceUnavailable] = ServiceUnavailable,
    ) -> Any:
        """``handle.method.remote(*args)``; ``error(unavailable)`` unless it answers or
        fails with its own error."""
        handle = self._hop(payload_bytes(args))
        try:
            return await asyncio.wait_for(getattr(handle, method).remote(*args), self._timeout_s)
        except Exception as failure:
            # NOTE: Ray's default transport wraps the callee's exception in a RayTaskError;
            # the throughput-optimized one raises it as it was.
            cause = failure.cause if isinstance(failure, RayTaskError) else failure
            if isinstance(cause, MedAIError):  # a client's error, or the callee's own 503
                raise cause from None
            # NOTE: the outcome is unknown, so the request must not be answered as if it
            # had succeeded.
            what = "timed out" if isinstance(cause, TimeoutError) else type(cause).__name__
            log.error("%s.%s failed: %s", handle.deployment_name, method, what)
            raise error(unavailable or self._unavailable) from None
