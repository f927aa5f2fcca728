"""Verification keys for the pinned JWT algorithms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from serve_app.auth.credentials import ConfigurationError, Credentials
from serve_app.errors import Unauthorized
from serve_app.settings import AuthSettings

MIN_RSA_BITS = 2048
"""NIST SP 800-131A: RSA keys shorter than 2048 bits are disallowed for signatures."""


def _strong_enough(key: Any) -> Any:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ConfigurationError(
            f"auth: an RSA key of {key.key_size} bits is refused; at least {MIN_RSA_BITS}"
        )
    return key


def _public_key_algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ConfigurationError("auth.public_key_file: need an RSA or P-256 EC public key")


@dataclass(frozen=True)
class VerificationKey:
    algorithm: str
    key: Any


class KeyRing:
    """Keys by ``kid`` (``None`` for the single configured key)."""

    def __init__(self, keys: dict[str | None, VerificationKey]) -> None:
        self.keys = keys

    @classmethod
    def from_settings(cls, auth: AuthSettings, credentials: Credentials) -> KeyRing:
        if auth.algorithms == ["HS256"]:
            if credentials.jwt_secret is None:
                raise ConfigurationError("HS256 needs MEDAI_JWT_SECRET")
            secret = credentials.jwt_secret.get_secret_value().encode()
            return cls({None: VerificationKey("HS256", secret)})
        if auth.public_key_file is not None:
            key = _strong_enough(load_pem_public_key(auth.public_key_file.read_bytes()))
            keys: dict[str | None, VerificationKey] = {
                None: VerificationKey(_public_key_algorithm(key), key)
            }
        else:
            assert auth.jwks_file is not None  # AuthSettings guarantees one of the two
            jwks = jwt.PyJWKSet.from_json(auth.jwks_file.read_text())
            keys = {
                k.key_id: VerificationKey(k.algorithm_name, _strong_enough(k.key))
                for k in jwks.keys
            }
        unusable = {k.algorithm for k in keys.values()} - set(auth.algorithms)
        if unusable:
            raise ConfigurationError(f"auth: keys for {sorted(unusable)} are not in algorithms")
        return cls(keys)

    def key_for(self, header: dict[str, Any]) -> VerificationKey:
        kid = header.get("kid")
        if None in self.keys and len(self.keys) == 1:
            key = self.keys[None]
        elif not isinstance(kid, str) or kid not in self.keys:
            raise Unauthorized("the token's key id (kid) is unknown", rule="unknown-kid")
        else:
            key = self.keys[kid]
        if header.get("alg") != key.algorithm:
            raise Unauthorized("the token's algorithm does not match its key", rule="algorithm")
        return key
