"""One error base whose HTTP meaning is data.

Every error a client can cause is a ``MedAIError`` subclass; the HTTP layer
renders all of them with one handler as RFC 9457 ``application/problem+json``.
Errors cross Ray process boundaries by pickling, so ``__reduce__`` keeps
every field.
"""

from __future__ import annotations

import math
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
        return (_rebuild, (type(self), self.__dict__))

    def __str__(self) -> str:
        return self.detail

    def headers(self) -> dict[str, str]:
        """HTTP headers that belong to this error (``Retry-After``, ``WWW-Authenticate``)."""
        return {}

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


class ModelOutputInvalid(MedAIError):
    """The model answered this image with values that are not numbers (NaN, infinity).

    The request was well formed but this image cannot be answered (422: retrying the same
    image gives the same answer). It fails this image alone and is never stored or
    audited as a result.
    """

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    slug = "model-output"
    title = "Model output unusable"


class Unauthorized(MedAIError):
    """No usable bearer token. The detail names the problem, never the token."""

    status = HTTPStatus.UNAUTHORIZED
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str, rule: str, field: str = "authorization", **kwargs: Any) -> None:
        super().__init__(detail, field, rule, **kwargs)

    def headers(self) -> dict[str, str]:
        # RFC 6750 section 3: no error code when the request carried no token at all.
        if self.rule == "missing":
            return {"WWW-Authenticate": 'Bearer realm="medai"'}
        return {"WWW-Authenticate": 'Bearer realm="medai", error="invalid_token"'}


class Forbidden(MedAIError):
    """A valid token whose role does not grant the route."""

    status = HTTPStatus.FORBIDDEN
    slug = "forbidden"
    title = "Forbidden"


class TooManyRequests(MedAIError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_s: float, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class NotFound(MedAIError):
    status = HTTPStatus.NOT_FOUND
    slug = "not-found"
    title = "Not found"


class Conflict(MedAIError):
    """The request contradicts what is recorded: an existing version, an illegal status move."""

    status = HTTPStatus.CONFLICT
    slug = "conflict"
    title = "Conflict"


class ServiceUnavailable(MedAIError):
    """Not ready, overloaded, or a dependency is down: the client may retry."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "unavailable"
    title = "Service unavailable"
    retry_after_s: ClassVar[int] = 1

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class OutcomeUnknown(ServiceUnavailable):
    """A write whose outcome is unknown: it may have been committed. The client must
    look the named records up before retrying, not assume nothing was stored."""

    slug = "outcome-unknown"
    title = "Outcome unknown"


class RecordRefused(MedAIError):
    """The store refused one caller's record for a reason no check foresaw; nothing of
    that caller's record was stored (others committed with it are unaffected)."""

    slug = "record-refused"
    title = "Record refused"


def _rebuild(cls: type[MedAIError], state: dict[str, Any]) -> MedAIError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["detail"])
    error.__dict__.update(state)
    return error
