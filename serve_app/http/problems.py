"""Render every error as RFC 9457 ``application/problem+json``, by one handler per base;
under ``/v2`` as the Open Inference Protocol's own ``{"error": ...}`` body."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from serve_app.errors import (
    PROBLEM_BASE,
    InvalidInput,
    MalformedRequest,
    MedAIError,
    UnsupportedMediaType,
)
from serve_app.schemas.problem import PROBLEM_JSON

log = logging.getLogger(__name__)


def problem_response(error: MedAIError, **extensions: Any) -> JSONResponse:
    """``error`` as problem+json, with RFC 9457 extension members when given."""
    return JSONResponse(
        error.to_problem() | extensions,
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers(),
    )


V2 = "/v2"


def is_v2(path: str) -> bool:
    """Under ``/v2``: the Open Inference Protocol, which states errors its own way."""
    return path == V2 or path.startswith(V2 + "/")


def error_response(error: MedAIError, path: str) -> JSONResponse:
    """``error`` as the API at ``path`` states errors: the v2 protocol's body under
    ``/v2``, problem+json everywhere else."""
    if is_v2(path):
        return JSONResponse(
            {"error": error.detail}, status_code=error.status, headers=error.headers()
        )
    return problem_response(error)


MAX_LISTED_ERRORS = 20
"""A problem lists at most this many errors: the body is bounded, not the count of its faults."""


def validation_problem(exc: RequestValidationError, request: Request) -> MedAIError:
    """Pydantic's errors, naming each field and rule, never echoing the input.

    A body in a media type the route does not read was never parsed, so every error
    in it is really the Content-Type's: a 415 naming that header.
    """
    expected = _refused_media_type(request)
    if expected and any(e["loc"][:1] == ("body",) for e in exc.errors()):
        return UnsupportedMediaType(
            f"Content-Type must be {expected}", field="content-type", rule="media-type"
        )
    errors = [
        {
            "field": _field(e["loc"]),
            "rule": e["type"],
            "message": e["msg"],
        }
        for e in exc.errors()[:MAX_LISTED_ERRORS]
    ]
    first = errors[0]
    if first["rule"] == "json_invalid" or (
        first["rule"] == "model_attributes_type" and first["field"] == "body"
    ):
        return MalformedRequest("body is not a valid JSON object", field="body", rule="json")
    return InvalidInput(
        f"{first['field']}: {first['message']}", first["field"], first["rule"], errors
    )


LOCATIONS = {"body", "query", "path"}
"""Where FastAPI found a value; a field is named without it (``limit``, ``data.0``)."""


def _field(loc: tuple[int | str, ...]) -> str:
    path = loc[1:] if loc and loc[0] in LOCATIONS else loc
    return ".".join(str(p) for p in path) or "body"


def _refused_media_type(request: Request) -> str | None:
    """The media type the matched route parses its body as, if the request declared another.

    FastAPI's own rule: a body with files must be multipart, other form bodies multipart
    or URL-encoded, any other body ``application/json`` or ``application/*+json``.
    """
    body = getattr(request.scope.get("route"), "body_field", None)
    sent = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if body is None:
        return None
    if isinstance(body.field_info, params.File):
        return None if sent == "multipart/form-data" else "multipart/form-data"
    if isinstance(body.field_info, params.Form):
        form = ("multipart/form-data", "application/x-www-form-urlencoded")
        return None if sent in form else "multipart/form-data"
    is_json = sent.startswith("application/") and sent.endswith(("/json", "+json"))
    return None if is_json else "application/json"


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route serves at the scope's path (into included routers)."""
    methods: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            methods |= allowed_methods(included.routes, scope)
        elif route.matches(scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(MedAIError)
    async def medai_error(request: Request, exc: MedAIError) -> JSONResponse:
        return error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_problem(exc, request), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # NOTE: FastAPI and Starlette answer a body they cannot parse at all with a bare
        # 400; its cause tells JSON nested past the recursion limit, JSON that is not
        # UTF-8 or holds an integer over 4300 digits, and broken multipart apart.
        cause = exc.__cause__ or exc.__context__
        path = request.url.path
        if isinstance(cause, RecursionError):
            return error_response(
                MalformedRequest("JSON body is nested too deeply", field="body", rule="json-depth"),
                path,
            )
        if isinstance(cause, ValueError):
            return error_response(
                MalformedRequest(
                    "body cannot be parsed: not UTF-8, or a number over 4300 digits",
                    field="body",
                    rule="parse",
                ),
                path,
            )
        if isinstance(cause, MultiPartException):
            return error_response(
                MalformedRequest(f"multipart body: {exc.detail}", field="body", rule="multipart"),
                path,
            )
        status = HTTPStatus(exc.status_code)
        headers = dict(getattr(exc, "headers", None) or {})
        if status is HTTPStatus.METHOD_NOT_ALLOWED:
            # NOTE: Starlette names the methods of the first route on the path only; a
            # path with a GET and a POST route would then deny the one it has.
            headers["Allow"] = ", ".join(sorted(allowed_methods(app.routes, request.scope)))
        if is_v2(path):
            return JSONResponse({"error": str(exc.detail)}, status.value, headers=headers)
        problem = {
            "type": PROBLEM_BASE + "http-" + str(status.value),
            "title": status.phrase,
            "status": status.value,
            "detail": str(exc.detail),
        }
        return JSONResponse(
            problem,
            status_code=status.value,
            media_type=PROBLEM_JSON,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        error = MedAIError("an internal error occurred; it has been logged")
        return error_response(error, request.url.path)
