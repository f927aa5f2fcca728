"""Pure-ASGI checks that must run before a body is read."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.errors import PayloadTooLarge
from serve_app.http.problems import problem_response


class BodySizeLimit:
    """Answer 413 as soon as a body is declared or streamed past ``max_bytes``.

    The body is counted while it arrives, so an oversized upload is refused
    without ever being held in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body exceeds {self.max_bytes} bytes", field="body", rule="max-size"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await problem_response(self._error())(scope, receive, send)
            return

        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not rejected:
                    rejected = True
                    await problem_response(self._error())(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:  # the 413 has been sent; swallow the app's own reply
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
