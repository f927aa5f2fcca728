"""The session's tokens outlive a long run: an hour's token made late tests fail 401."""

from __future__ import annotations

import time

import jwt

from tests.conftest import TokenFactory


def expires_in_s(token: str) -> float:
    return jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()


def test_the_session_clinician_token_lasts_six_hours(clinician: dict[str, str]) -> None:
    token = clinician["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})

    # NOTE: from its own iat, not from now: on a loaded machine this test can run more
    # than ten minutes after the session minted it.
    assert claims["exp"] - claims["iat"] == 6 * 3600
    assert expires_in_s(token) > 0


def test_tokens_minted_for_a_test_last_as_long(token_for: TokenFactory) -> None:
    assert expires_in_s(token_for("admin")) > 6 * 3600 - 60
    assert expires_in_s(token_for("admin", ttl_s=60)) <= 60  # a test may still ask for less
