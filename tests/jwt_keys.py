"""Real signing keys for tests (generated per session, never committed) and raw token forging."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A token built by hand, as an attacker would: any header, an HMAC or no signature."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = (
        hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest() if hmac_key else b""
    )
    return f"{signing_input}.{b64(signature)}"


@dataclass(frozen=True)
class KeyPair:
    algorithm: str
    private: Any

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, kid: str) -> dict[str, Any]:
        algorithm = (
            jwt.algorithms.RSAAlgorithm if self.algorithm == "RS256" else jwt.algorithms.ECAlgorithm
        )
        return {
            **algorithm.to_jwk(self.private.public_key(), as_dict=True),
            "kid": kid,
            "alg": self.algorithm,
        }

    def write_public_pem(self, directory: Path) -> Path:
        path = directory / f"{self.algorithm.lower()}.pem"
        path.write_bytes(self.public_pem)
        return path


def rsa_pair() -> KeyPair:
    return KeyPair("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_pair() -> KeyPair:
    return KeyPair("ES256", ec.generate_private_key(ec.SECP256R1()))


def write_jwks(directory: Path, keys: dict[str, KeyPair]) -> Path:
    path = directory / "jwks.json"
    path.write_text(json.dumps({"keys": [pair.jwk(kid) for kid, pair in keys.items()]}))
    return path
