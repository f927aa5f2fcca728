"""OpenAPI description of the RFC 9457 problem responses every route may give."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Each broken rule: the field (dotted path) and the rule's name.",
            "items": {
                "type": "object",
                "required": ["field", "rule", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": 'The Bearer challenge (RFC 6750), with error="invalid_token".'},
    429: {"Retry-After": "Seconds until the caller's rate allows another request."},
    503: {"Retry-After": "Seconds after which to retry."},
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for these status codes, each a problem+json body."""
    return {
        code: {
            "description": HTTPStatus(code).phrase,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
            "headers": {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in HEADERS.get(code, {}).items()
            },
        }
        for code in codes
    }
