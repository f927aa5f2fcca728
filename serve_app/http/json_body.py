"""JSON request bodies parsed and validated in a worker thread, not on the event loop.

FastAPI parses and validates a JSON body on the event loop: a 24 MiB pixel list held
the loop, and every request on it, for seconds. Routes of ``OffLoopJsonRoute`` do the
same work, with the same errors, in a thread; FastAPI then finds the body already
parsed (``Request.json`` caches) and validated (a model instance passes unchanged).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

BODY = ("body",)


def parse(raw: bytes, field: Any) -> Any:
    """``raw`` parsed and validated as FastAPI would, raising what FastAPI would raise."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": (*BODY, exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from exc
    except Exception as exc:  # RecursionError; ValueError: not UTF-8, an int over 4300 digits
        raise HTTPException(400, "There was an error parsing the body") from exc
    value, errors = field.validate(obj, {}, loc=BODY)
    if errors:
        raise RequestValidationError(errors, body=obj)
    return value


def is_json(content_type: str | None) -> bool:
    """FastAPI's test: ``application/json`` or ``application/*+json``, parameters aside."""
    media = (content_type or "").partition(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class OffLoopJsonRoute(APIRoute):
    """A route whose JSON body is parsed and validated in a thread. Other media types
    are left to FastAPI, which refuses them as before (415)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field

        async def parsed_off_loop(request: Request) -> Response:
            if field is not None and is_json(request.headers.get("content-type")):
                try:
                    raw = await request.body()
                except ClientDisconnect:  # or cut off by BodySizeLimit: FastAPI answers it
                    raw = b""
                if raw:
                    request._json = await asyncio.to_thread(parse, raw, field)
            return await handler(request)

        return parsed_off_loop
