"""Pure-ASGI middleware: the request's context and log line, and the body-size check."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.errors import PayloadTooLarge
from serve_app.http.metrics import Metrics
from serve_app.http.problems import error_response
from serve_app.logs import request_id

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""Client-chosen request ids are kept only when they are this plain (they reach the logs)."""


class BodySizeLimit:
    """Answer 413 as soon as a body is declared or streamed past its limit.

    The body is counted while it arrives, so an oversized upload is refused
    without ever being held in memory. ``per_path`` gives some exact paths their
    own limit and names the setting that sets it (model uploads are larger than
    images, JSON pixel lists smaller).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        per_path: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})

    @staticmethod
    def _error(limit: int, setting: str | None) -> PayloadTooLarge:
        named = f" ({setting})" if setting else ""
        detail = f"request body exceeds {limit} bytes{named}"
        return PayloadTooLarge(detail, field="body", rule="max-size")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.per_path.get(scope["path"], (self.max_bytes, None))

        def refusal() -> Response:
            return error_response(self._error(limit, setting), scope["path"])

        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            await refusal()(scope, receive, send)
            return

        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not rejected:
                    rejected = True
                    await error_response(self._error(limit, setting), scope["path"])(
                        scope, receive, send
                    )
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:  # the 413 has been sent; swallow the app's own reply
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


class RequestContext:
    """Give each request an id (``X-Request-ID``) and log one JSON access line for it.

    Behind Ray Serve the proxy (or HAProxy) has already set ``x-request-id`` and echoes
    it; served alone, the id is made here and echoed here. The line names the route,
    status, duration and the caller's ``sub`` — never the query, body or token.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if not given:
                    MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            principal = scope.get("state", {}).get("principal")
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "user": principal.subject if principal else None,
                },
            )
            # NOTE: the route's template, never the raw path: clients choose paths freely.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, status).inc()
            self.metrics.duration.labels(route).observe(seconds)
            request_id.reset(token)
