"""Bearer tokens: verify (every request) and mint (``medai token``).

Every rejection is an ``Unauthorized`` whose rule names the check that failed;
PyJWT's exceptions are translated here and nowhere else. The token itself is
never echoed.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from serve_app.auth.keys import KeyRing
from serve_app.errors import Unauthorized
from serve_app.settings import AuthSettings

REQUIRED_CLAIMS = ("sub", "role", "exp")
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
"""RFC 7515 compact form: unpadded base64url only, so one token has one spelling."""

MAX_SUBJECT_CHARS = 128
"""Longest ``sub``: it is stored as the audit actor and the result's owner (128-character
columns), so a longer one is refused here, before it can reach a write."""
MAX_ROLE_CHARS = 32
"""Longest ``role``: the audit entry's ``role`` column holds 32 characters."""
CLAIM_BOUNDS: dict[str, tuple[int, re.Pattern[str]]] = {
    "sub": (MAX_SUBJECT_CHARS, re.compile(r"[^\x00-\x1f\x7f]+")),  # no control characters
    "role": (MAX_ROLE_CHARS, re.compile(r"[A-Za-z0-9_.:-]+")),
}

VERIFIED_CACHE_SIZE = 4096
"""Tokens whose signature and claims were verified, kept (least recently used first out)
so a client's next request skips the signature check (measured on the 2-core machine:
61 µs of CPU a verification for HS256, more for RS256/ES256; 0.3 µs from memory)."""

ISSUER_SEPARATOR = "|"
"""Between ``iss`` and ``sub`` in the identity of a token from an issuer this server was
not configured with: that issuer's ``alice`` is another person than ours."""

_RULES: list[tuple[type[jwt.PyJWTError], str, str]] = [
    # Most specific first: several of these subclass one another.
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "not-yet-valid", "the token is not valid yet (nbf/iat)"),
    (jwt.InvalidIssuedAtError, "issued-at", "the token's iat claim is invalid"),
    (jwt.InvalidIssuerError, "issuer", "the token's issuer is not accepted"),
    (jwt.InvalidAudienceError, "audience", "the token's audience is not accepted"),
    (jwt.exceptions.InvalidSubjectError, "claim-type", "the token's 'sub' claim is not a string"),
    (jwt.InvalidSignatureError, "signature", "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "algorithm", "the token's algorithm is not accepted"),
    (jwt.InvalidKeyError, "algorithm", "the token's algorithm does not match its key"),
    (jwt.DecodeError, "malformed", "the token is not a well-formed JWT"),
    (jwt.PyJWTError, "invalid", "the token is invalid"),
]


@dataclass(frozen=True)
class Principal:
    """The verified caller: ``subject`` is its identity (the token's ``sub``, qualified by
    its ``iss`` when that is not ``auth.issuer``), ``role`` its ``role``."""

    subject: str
    role: str


def _translate(exc: jwt.PyJWTError) -> Unauthorized:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return Unauthorized(f"the token lacks the {exc.claim!r} claim", rule="missing-claim")
    rule, detail = next((r, d) for kind, r, d in _RULES if isinstance(exc, kind))
    return Unauthorized(detail, rule=rule)


class TokenVerifier:
    def __init__(self, auth: AuthSettings, keys: KeyRing) -> None:
        self.auth = auth
        self.keys = keys
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str | None) -> Principal:
        """The token's caller, or ``Unauthorized`` naming the check that failed.

        A token verified before is answered from memory until its ``exp`` (plus the
        leeway) passes; then it is verified again, which refuses it as expired. Nothing
        else about a verified token can change: the keys are fixed for this verifier's
        life, and ``nbf``/``iat`` only become truer as time passes.
        """
        if not token:
            raise Unauthorized("a bearer token is required", rule="missing")
        if (known := self._verified.get(token)) is not None:
            principal, expires = known
            if time.time() <= expires + self.auth.leeway_s:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = self._verify_signed(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, float]:
        if len(token) > self.auth.max_token_bytes:
            raise Unauthorized(
                f"the token is longer than {self.auth.max_token_bytes} bytes", rule="max-size"
            )
        if not COMPACT_JWS.fullmatch(token):
            raise Unauthorized("the token is not a well-formed JWT", rule="malformed")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.auth.algorithms:
                raise Unauthorized("the token's algorithm is not accepted", rule="algorithm")
            key = self.keys.key_for(header)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                issuer=self.auth.issuer,
                audience=self.auth.audience,
                leeway=self.auth.leeway_s,
                options={
                    "require": [*REQUIRED_CLAIMS, *(["iss"] if self.auth.issuer else [])],
                    "verify_aud": self.auth.audience is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise _translate(exc) from None
        for claim, (longest, form) in CLAIM_BOUNDS.items():
            value = claims[claim]
            if not isinstance(value, str) or not value:
                raise Unauthorized(
                    f"the token's {claim!r} claim is not a string", rule="claim-type"
                )
            if len(value) > longest:
                raise Unauthorized(
                    f"the token's {claim!r} claim is longer than {longest} characters",
                    rule="claim-length",
                )
            if not form.fullmatch(value):
                raise Unauthorized(
                    f"the token's {claim!r} claim holds characters that are not accepted",
                    rule="claim-chars",
                )
        return Principal(subject=self._identity(claims), role=claims["role"]), float(claims["exp"])

    def _identity(self, claims: dict[str, Any]) -> str:
        """The caller's identity: ``sub``, qualified by ``iss`` unless it is the issuer
        this server is configured with (the only one production accepts)."""
        issuer, subject = claims.get("iss"), str(claims["sub"])
        if self.auth.issuer is None and ISSUER_SEPARATOR in subject:
            # NOTE: qualified identities exist here; a bare sub must not spell one.
            raise Unauthorized(
                f"the token's 'sub' claim holds {ISSUER_SEPARATOR!r}", rule="claim-chars"
            )
        if issuer is None or issuer == self.auth.issuer:
            return subject
        if not isinstance(issuer, str):
            raise Unauthorized("the token's 'iss' claim is not a string", rule="claim-type")
        identity = f"{issuer}{ISSUER_SEPARATOR}{subject}"
        if len(identity) > MAX_SUBJECT_CHARS:
            raise Unauthorized(
                f"the token's 'iss' and 'sub' are longer than {MAX_SUBJECT_CHARS} characters",
                rule="claim-length",
            )
        return identity


def mint(
    auth: AuthSettings,
    key: Any,
    subject: str,
    role: str,
    ttl_s: float,
    algorithm: str | None = None,
    kid: str | None = None,
    now: float | None = None,
) -> str:
    """A token the server configured with ``auth`` accepts (until ``ttl_s`` passes)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl_s),
    }
    if auth.issuer:
        claims["iss"] = auth.issuer
    if auth.audience:
        claims["aud"] = auth.audience
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm=algorithm or auth.algorithms[0], headers=headers)
