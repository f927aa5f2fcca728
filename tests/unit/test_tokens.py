"""Token verification: every way a token can be wrong is a 401 naming the failed check."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from serve_app.audit.bounds import max_length
from serve_app.auth.credentials import ConfigurationError, Credentials
from serve_app.auth.keys import KeyRing
from serve_app.auth.tokens import MAX_ROLE_CHARS, MAX_SUBJECT_CHARS, Principal, TokenVerifier, mint
from serve_app.errors import Unauthorized
from serve_app.settings import AuthSettings
from serve_app.storage.models import AuditLog, InferenceResult
from tests.jwt_keys import KeyPair, ec_pair, forge, rsa_pair, write_jwks

SECRET = "s" * 48
IDP = {"issuer": "https://idp.test", "audience": "medai-flow"}
HS = AuthSettings(**IDP, leeway_s=5)


@pytest.fixture(scope="module")
def rsa() -> KeyPair:
    return rsa_pair()


@pytest.fixture(scope="module")
def ec() -> KeyPair:
    return ec_pair()


def hs_verifier(auth: AuthSettings = HS) -> TokenVerifier:
    return TokenVerifier(
        auth, KeyRing.from_settings(auth, Credentials(jwt_secret=SecretStr(SECRET)))
    )


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base = {"sub": "alice", "role": "clinician", "iat": now, "exp": now + 86400}
    base |= {"iss": "https://idp.test", "aud": "medai-flow"}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def rejection(verifier: TokenVerifier, token: str | None) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    assert not token or token not in caught.value.detail
    return caught.value


def test_minted_token_verifies_to_its_principal() -> None:
    token = mint(HS, SECRET, "alice", "clinician", ttl_s=60)
    assert hs_verifier().verify(token) == Principal("alice", "clinician")


@pytest.mark.parametrize(
    ("token_claims", "rule"),
    [
        (claims(exp=int(time.time()) - 60), "expired"),
        # NOTE: a day ahead, not a minute: these are built at collection, and a long
        # suite can reach a minute-ahead nbf before this test runs.
        (claims(nbf=int(time.time()) + 86400), "not-yet-valid"),
        (claims(iat=int(time.time()) + 86400), "not-yet-valid"),
        (claims(iat="yesterday"), "issued-at"),
        (claims(iss="https://evil.test"), "issuer"),
        (claims(iss=None), "missing-claim"),
        (claims(aud="someone-else"), "audience"),
        (claims(aud=None), "missing-claim"),
        (claims(sub=None), "missing-claim"),
        (claims(role=None), "missing-claim"),
        (claims(exp=None), "missing-claim"),
        (claims(sub=42), "claim-type"),
        (claims(role=["admin"]), "claim-type"),
        (claims(role=""), "claim-type"),
        # Finding 3: a claim longer than the column it is stored in (actor, requested_by,
        # role) must not reach a group commit; one character over is refused.
        (claims(sub="x" * 300), "claim-length"),
        (claims(sub="x" * (MAX_SUBJECT_CHARS + 1)), "claim-length"),
        (claims(role="clinician" * 4), "claim-length"),
        (claims(sub="alice\nadmin"), "claim-chars"),
        (claims(role="admin role"), "claim-chars"),
    ],
)
def test_claim_failures_name_their_rule(token_claims: dict[str, object], rule: str) -> None:
    token = jwt.encode(token_claims, SECRET, algorithm="HS256")
    assert rejection(hs_verifier(), token).rule == rule


def test_claim_bounds_are_the_columns_they_are_stored_in() -> None:
    assert max_length(AuditLog, "actor") == MAX_SUBJECT_CHARS
    assert max_length(InferenceResult, "requested_by") == MAX_SUBJECT_CHARS
    assert max_length(AuditLog, "role") == MAX_ROLE_CHARS
    token = mint(HS, SECRET, "a" * MAX_SUBJECT_CHARS, "ml_engineer", ttl_s=60)
    assert hs_verifier().verify(token).subject == "a" * MAX_SUBJECT_CHARS


def test_leeway_tolerates_small_clock_skew() -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 2), SECRET, algorithm="HS256")
    assert hs_verifier().verify(token).subject == "alice"


@pytest.mark.parametrize(
    ("token", "rule"),
    [
        (None, "missing"),
        ("", "missing"),
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
        ("e30.e30.", "algorithm"),  # {} header: no alg at all
        (forge({"alg": "none", "typ": "JWT"}, claims()), "algorithm"),
        (forge({"alg": "None"}, claims()), "algorithm"),
        (forge({"alg": "HS512"}, claims(), hmac_key=SECRET.encode()), "algorithm"),
        (forge({"alg": "RS256"}, claims()), "algorithm"),
        (forge({"alg": "HS256"}, claims(), hmac_key=b"not-the-secret" * 4), "signature"),
        ("x" * 9000, "max-size"),
    ],
)
def test_forged_tokens_are_rejected(token: str | None, rule: str) -> None:
    assert rejection(hs_verifier(), token).rule == rule


@pytest.mark.parametrize("change", ["=", "==", " trailing", "\u00e9"])
def test_a_token_has_one_spelling(change: str) -> None:
    """Base64 padding or stray characters would give one token two accepted spellings."""
    token = mint(HS, SECRET, "alice", "clinician", ttl_s=60)
    assert rejection(hs_verifier(), token + change).rule == "malformed"


def test_tampered_payload_breaks_the_signature() -> None:
    token = mint(HS, SECRET, "alice", "clinician", ttl_s=60)
    header, _, signature = token.split(".")
    forged = forge({"alg": "HS256", "typ": "JWT"}, claims(role="admin"))
    tampered = f"{header}.{forged.split('.')[1]}.{signature}"
    assert rejection(hs_verifier(), tampered).rule == "signature"


def test_hs_token_signed_with_the_rsa_public_key_is_refused(rsa: KeyPair, tmp_path: Path) -> None:
    """The classic key-confusion attack on an RS256 server."""
    auth = AuthSettings(algorithms=["RS256"], public_key_file=rsa.write_public_pem(tmp_path))
    verifier = TokenVerifier(auth, KeyRing.from_settings(auth, Credentials()))
    confused = forge({"alg": "HS256"}, claims(), hmac_key=rsa.public_pem)
    assert rejection(verifier, confused).rule == "algorithm"
    genuine = jwt.encode(claims(), rsa.private, algorithm="RS256")
    assert verifier.verify(genuine).role == "clinician"


def test_ec_public_key_verifies_es256_only(ec: KeyPair, rsa: KeyPair, tmp_path: Path) -> None:
    auth = AuthSettings(
        algorithms=["RS256", "ES256"], public_key_file=ec.write_public_pem(tmp_path), **IDP
    )
    verifier = TokenVerifier(auth, KeyRing.from_settings(auth, Credentials()))
    assert verifier.verify(jwt.encode(claims(), ec.private, algorithm="ES256")).subject == "alice"
    wrong_family = jwt.encode(claims(), rsa.private, algorithm="RS256")
    assert rejection(verifier, wrong_family).rule == "algorithm"


def test_jwks_picks_the_key_by_kid(rsa: KeyPair, ec: KeyPair, tmp_path: Path) -> None:
    jwks = write_jwks(tmp_path, {"rsa-1": rsa, "ec-1": ec})
    auth = AuthSettings(algorithms=["RS256", "ES256"], jwks_file=jwks, **IDP)
    verifier = TokenVerifier(auth, KeyRing.from_settings(auth, Credentials()))
    for kid, pair in (("rsa-1", rsa), ("ec-1", ec)):
        token = jwt.encode(claims(), pair.private, algorithm=pair.algorithm, headers={"kid": kid})
        assert verifier.verify(token).subject == "alice"
    swapped = jwt.encode(claims(), rsa.private, algorithm="RS256", headers={"kid": "ec-1"})
    assert rejection(verifier, swapped).rule == "algorithm"
    other = rsa_pair()
    signed_by_other = jwt.encode(
        claims(), other.private, algorithm="RS256", headers={"kid": "rsa-1"}
    )
    assert rejection(verifier, signed_by_other).rule == "signature"
    for headers in ({"kid": "rsa-9"}, {}):
        unknown = jwt.encode(claims(), rsa.private, algorithm="RS256", headers=headers)
        assert rejection(verifier, unknown).rule == "unknown-kid"


def test_unconfigured_issuer_and_audience_are_not_checked() -> None:
    verifier = hs_verifier(AuthSettings())
    token = jwt.encode(claims(iss="anyone", aud="anything"), SECRET, algorithm="HS256")
    # Finding 10: not checked, but not trusted as ours either: its sub is namespaced.
    assert verifier.verify(token).subject == "anyone|alice"


def test_mixed_key_families_are_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="cannot be mixed"):
        AuthSettings(algorithms=["HS256", "RS256"])
    with pytest.raises(ValueError, match="exactly one"):
        AuthSettings(algorithms=["RS256"])


def test_key_outside_the_pinned_algorithms_is_a_configuration_error(
    ec: KeyPair, tmp_path: Path
) -> None:
    auth = AuthSettings(algorithms=["RS256"], public_key_file=ec.write_public_pem(tmp_path))
    with pytest.raises(ConfigurationError, match="ES256"):
        KeyRing.from_settings(auth, Credentials())


def test_a_verified_token_is_refused_once_it_expires() -> None:
    # NOTE: verified tokens are kept in memory; expiry must still end them.
    verifier = hs_verifier(AuthSettings(**IDP, leeway_s=0))
    token = jwt.encode(claims(exp=int(time.time()) + 2), SECRET, algorithm="HS256")
    assert verifier.verify(token) == Principal("alice", "clinician")
    assert verifier.verify(token) == Principal("alice", "clinician")
    time.sleep(3.1)
    assert rejection(verifier, token).rule == "expired"


def test_a_remembered_token_does_not_vouch_for_an_altered_one() -> None:
    verifier = hs_verifier()
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    verifier.verify(token)
    header, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b"clinician", b"auditor")
    ).decode()
    assert rejection(verifier, f"{header}.{forged_payload}.{signature}").rule == "signature"
    assert rejection(verifier, f"{token}x").rule in {"signature", "malformed"}


def test_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("serve_app.auth.tokens.VERIFIED_CACHE_SIZE", 3)
    verifier = hs_verifier()
    tokens = [jwt.encode(claims(sub=f"user{i}"), SECRET, algorithm="HS256") for i in range(5)]
    principals = [verifier.verify(token) for token in tokens]
    assert len(verifier._verified) == 3
    assert [verifier.verify(token) for token in tokens] == principals
