"""Render every error as RFC 9457 ``application/problem+json``, by one handler per base."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve_app.errors import PROBLEM_BASE, InvalidInput, MalformedRequest, MedAIError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(error: MedAIError) -> JSONResponse:
    headers = (
        {"Retry-After": "1"}
        if error.status in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS)
        else None
    )
    return JSONResponse(
        error.to_problem(), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


def validation_problem(exc: RequestValidationError) -> MedAIError:
    """Pydantic's errors, naming each field and rule, never echoing the input."""
    errors = [
        {
            "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
            "rule": e["type"],
            "message": e["msg"],
        }
        for e in exc.errors()
    ]
    first = errors[0]
    if first["rule"] == "json_invalid" or (
        first["rule"] == "model_attributes_type" and first["field"] == "body"
    ):
        return MalformedRequest("body is not a valid JSON object", field="body", rule="json")
    return InvalidInput(
        f"{first['field']}: {first['message']}", first["field"], first["rule"], errors
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(MedAIError)
    async def medai_error(_: Request, exc: MedAIError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = HTTPStatus(exc.status_code)
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
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return problem_response(MedAIError("an internal error occurred; it has been logged"))
