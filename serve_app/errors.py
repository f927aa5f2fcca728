"""One error base whose HTTP meaning is data.

Every error a client can cause is a ``MedAIError`` subclass; the HTTP layer
renders all of them with one handler as RFC 9457 ``application/problem+json``.
Errors cross Ray process boundaries by pickling, so ``__reduce__`` keeps
every field.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

PROBLEM_BASE = "https://medai-flow.dev/problems/"


class MedAIError(Exception):
    status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        field: str | None = None,
        rule: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.rule = rule
        self.errors = errors or (
            [{"field": field, "rule": rule, "message": detail}] if field is not None else []
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail, self.field, self.rule, self.errors))

    def __str__(self) -> str:
        return self.detail

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": int(self.status),
            "detail": self.detail,
        }
        if self.errors:
            problem["errors"] = self.errors
        return problem


class InvalidInput(MedAIError):
    """The request is well-formed but breaks a validation rule."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    slug = "invalid-input"
    title = "Invalid input"


class MalformedRequest(MedAIError):
    """The body cannot be parsed at all (not JSON, not multipart, ...)."""

    status = HTTPStatus.BAD_REQUEST
    slug = "malformed-request"
    title = "Malformed request"


class PayloadTooLarge(MedAIError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(MedAIError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class NotFound(MedAIError):
    status = HTTPStatus.NOT_FOUND
    slug = "not-found"
    title = "Not found"


class ServiceUnavailable(MedAIError):
    """Not ready, overloaded, or a dependency is down: the client may retry."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "unavailable"
    title = "Service unavailable"
    retry_after_s: ClassVar[int] = 1
