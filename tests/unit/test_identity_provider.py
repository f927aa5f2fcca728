"""An outside identity provider in production (security review, finding 10), with real keys.

Another application's token from the same provider must not be accepted with its
``role``; another issuer's ``sub`` is another person; a weak RSA key is refused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from serve_app.auth.credentials import ConfigurationError, Credentials, load_credentials
from serve_app.auth.keys import MIN_RSA_BITS, KeyRing
from serve_app.auth.tokens import TokenVerifier
from serve_app.errors import Unauthorized
from serve_app.settings import Settings
from tests.jwt_keys import KeyPair, rsa_pair, write_jwks

ISSUER = "https://idp.hospital.test/realms/radiology"
AUDIENCE = "medai-flow"


@pytest.fixture(scope="module")
def strong() -> KeyPair:
    return rsa_pair()


@pytest.fixture(scope="module")
def weak() -> KeyPair:
    return KeyPair("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024))


def settings(tmp_path: Path, pair: KeyPair, **auth: Any) -> Settings:
    return Settings(
        environment="production",
        data_dir=tmp_path,
        auth={"algorithms": ["RS256"], "public_key_file": pair.write_public_pem(tmp_path), **auth},
    )


def token(pair: KeyPair, **claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "alice", "role": "admin", "iat": now, "exp": now + 600}
    return jwt.encode(base | claims, pair.private, algorithm="RS256")


def test_production_with_rs256_needs_issuer_and_audience(tmp_path: Path, strong: KeyPair) -> None:
    with pytest.raises(ConfigurationError, match=r"auth\.issuer and auth\.audience"):
        load_credentials(settings(tmp_path, strong))
    with pytest.raises(ConfigurationError, match=r"auth\.audience"):
        load_credentials(settings(tmp_path, strong, issuer=ISSUER))
    load_credentials(settings(tmp_path, strong, issuer=ISSUER, audience=AUDIENCE))


def test_another_issuers_or_applications_token_is_refused(tmp_path: Path, strong: KeyPair) -> None:
    configured = settings(tmp_path, strong, issuer=ISSUER, audience=AUDIENCE)
    verifier = TokenVerifier(configured.auth, KeyRing.from_settings(configured.auth, Credentials()))
    ours = verifier.verify(token(strong, iss=ISSUER, aud=AUDIENCE))
    assert (ours.subject, ours.role) == ("alice", "admin")
    for claims, rule in (
        ({"iss": "https://idp.hospital.test/realms/billing", "aud": AUDIENCE}, "issuer"),
        ({"iss": ISSUER, "aud": "billing-app"}, "audience"),
        ({"iss": ISSUER}, "missing-claim"),
        ({"aud": AUDIENCE}, "missing-claim"),
    ):
        with pytest.raises(Unauthorized) as refused:
            verifier.verify(token(strong, **claims))
        assert refused.value.rule == rule


def test_without_a_configured_issuer_identities_are_namespaced_by_issuer(
    tmp_path: Path, strong: KeyPair
) -> None:
    development = Settings(
        data_dir=tmp_path,
        auth={"algorithms": ["RS256"], "public_key_file": strong.write_public_pem(tmp_path)},
    )
    verifier = TokenVerifier(
        development.auth, KeyRing.from_settings(development.auth, Credentials())
    )
    first = verifier.verify(token(strong, iss="https://a.test")).subject
    second = verifier.verify(token(strong, iss="https://b.test")).subject
    assert first != second
    assert first == "https://a.test|alice"
    with pytest.raises(Unauthorized) as refused:
        verifier.verify(token(strong, iss="https://" + "i" * 120))
    assert refused.value.rule == "claim-length"
    # A token without iss must not pass for another issuer's alice.
    with pytest.raises(Unauthorized) as refused:
        verifier.verify(token(strong, sub="https://a.test|alice"))
    assert refused.value.rule == "claim-chars"


def test_rsa_keys_under_2048_bits_are_refused(tmp_path: Path, weak: KeyPair) -> None:
    assert weak.private.key_size < MIN_RSA_BITS
    pem = Settings(
        data_dir=tmp_path,
        auth={"algorithms": ["RS256"], "public_key_file": weak.write_public_pem(tmp_path)},
    )
    with pytest.raises(ConfigurationError, match="1024 bits"):
        KeyRing.from_settings(pem.auth, Credentials())
    jwks = Settings(
        data_dir=tmp_path,
        auth={"algorithms": ["RS256"], "jwks_file": write_jwks(tmp_path, {"old": weak})},
    )
    with pytest.raises(ConfigurationError, match="1024 bits"):
        KeyRing.from_settings(jwks.auth, Credentials())
