"""Authentication and rate limiting before the body is read; authorization per route.

``Authenticate`` is pure ASGI so that a request without a valid token, or over its
user's rate, is answered before its body is received, let alone parsed. Routes then
``require`` a permission of the principal it verified; ``BEARER`` documents the
scheme in the OpenAPI schema.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from serve_app.auth.rbac import Permission, authorize
from serve_app.auth.tokens import Principal, TokenVerifier
from serve_app.errors import MedAIError, TooManyRequests, Unauthorized
from serve_app.http.auth_failures import FailedAuthentications
from serve_app.http.metrics import Metrics
from serve_app.http.problems import error_response
from serve_app.ratelimit import TokenBuckets

log = logging.getLogger(__name__)

BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A JWT with `sub`, `role` and `exp` claims (`medai token` mints one).",
)


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class Authenticate:
    """Verify the bearer token and take a rate token for its subject, or answer 401/429.

    A failed authentication is counted for the audit trail (``FailedAuthentications``)
    and never waits for it; with rate limiting on, a client address that keeps failing
    gets 429 from its own bucket (``strangers``) until it slows down.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        buckets: TokenBuckets | None,
        public_paths: Collection[str],
        metrics: Metrics,
        failures: FailedAuthentications,
        strangers: TokenBuckets | None = None,
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.failures = failures
        self.metrics = metrics
        self.verifier = verifier
        self.buckets = buckets
        self.strangers = strangers
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = public_prefixes

    def _admit(self, scope: Scope) -> Principal:
        try:
            caller = self.verifier.verify(bearer_token(scope))
        except Unauthorized as error:
            client = client_address(scope)
            self.failures.note(str(error.rule), client, scope["method"], scope["path"])
            if self.strangers is not None and (wait := self.strangers.take(client)):
                raise TooManyRequests(
                    "too many unauthenticated requests from this address",
                    retry_after_s=wait,
                    field="authorization",
                    rule="rate-limit",
                ) from None
            raise
        if self.buckets is not None and (wait := self.buckets.take(caller.subject)):
            raise TooManyRequests(
                f"rate limit of {self.buckets.rate:g} requests/s exceeded",
                retry_after_s=wait,
                field="authorization",
                rule="rate-limit",
            )
        return caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in self.public_paths
            or path.startswith(self.public_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        try:
            caller = self._admit(scope)
        except MedAIError as error:
            log.warning("request refused", extra={"status": int(error.status), "rule": error.rule})
            self.metrics.refused.labels(int(error.status), error.rule).inc()
            await error_response(error, scope["path"])(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = caller
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    """The peer's address (a proxy's, behind one: ``X-Forwarded-For`` is not trusted)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def require(*permissions: Permission) -> Any:
    """A dependency giving the route the caller's ``Principal`` once it holds one of
    ``permissions``."""

    async def principal(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        caller = getattr(request.state, "principal", None)
        if caller is None:  # a route left public by mistake: fail closed
            raise Unauthorized("a bearer token is required", rule="missing")
        authorize(caller, *permissions)
        return caller

    principal.permissions = permissions  # type: ignore[attr-defined]  # a function attribute the role-matrix test reads
    return Depends(principal)
