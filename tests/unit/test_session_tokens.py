"""The session's tokens outlive a long run: an hour's token made late tests fail 401."""

from __future__ import annotations

import time

import jwt

from tests.conftest import TokenFactory


def expires_in_s(token: str) -> float:
    return jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()


def test_the_session_clinician_token_lasts_six_hours(clinician: dict[str, str]) -> None:
    token = clinician["Authorization"].removeprefix("Bearer ")

    assert expires_in_s(token) > 6 * 3600 - 600  # minted at most 10 minutes ago


def test_tokens_minted_for_a_test_last_as_long(token_for: TokenFactory) -> None:
    assert expires_in_s(token_for("admin")) > 6 * 3600 - 60
    assert expires_in_s(token_for("admin", ttl_s=60)) <= 60  # a test may still ask for less
