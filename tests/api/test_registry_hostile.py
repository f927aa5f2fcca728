"""Hostile requests to the registry and route endpoints: bad names, malformed promote and
rollback bodies, deleting a route that does not exist. Each is a 4xx problem+json naming
the field, and changes nothing. In process."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.api.test_records import whole_trail
from tests.api.test_registry import register, statuses
from tests.problems import PROBLEM_JSON, assert_problem, assert_still_serving

HOSTILE_NAMES = {
    "too-long": "m" * 65,
    "very-long": "m" * 20_000,
    "dot-dot": "../chest-xray-demo",
    "slash": "chest/xray",
    "backslash": "chest\\xray",
    "nul": "chest\x00xray",
    "newline": "chest\nxray",
    "space": "chest xray",
    "unicode-letters": "胸部-xray",
    "homoglyph": "chest-xr\u0430y-demo",  # a Cyrillic a
    "right-to-left": "chest\u202exray",
    "empty": "",
    "sql": "x' OR '1'='1",
}


@pytest.fixture
def client(inprocess_client: httpx.Client) -> httpx.Client:
    return inprocess_client


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_listing_models_by_a_hostile_name_is_422_naming_it(
    client: httpx.Client, engineer: dict[str, str], name: str
) -> None:
    response = client.get("/models", params={"name": name}, headers=engineer)

    assert_problem(response, 422, "name", "string_pattern_mismatch")
    assert name not in response.text or not name  # never echoed


def test_listing_an_unknown_but_valid_name_is_an_empty_list(
    client: httpx.Client, engineer: dict[str, str]
) -> None:
    response = client.get("/models", params={"name": f"never-{uuid.uuid4().hex}"}, headers=engineer)

    assert response.status_code == 200 and response.json() == []


@pytest.fixture
def registered(client: httpx.Client, engineer: dict[str, str]) -> str:
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    assert register(client, engineer, name, "1").status_code == 201
    return name


PROMOTIONS: dict[str, tuple[Any, str, str]] = {
    "to-number": ({"to": 1}, "to", "enum"),
    "to-null": ({"to": None}, "to", "enum"),
    "to-list": ({"to": ["validation"]}, "to", "enum"),
    "to-object": ({"to": {"status": "validation"}}, "to", "enum"),
    "to-unknown": ({"to": "approved"}, "to", "enum"),
    "to-upper-case": ({"to": "VALIDATION"}, "to", "enum"),
    "to-padded": ({"to": " validation"}, "to", "enum"),
    "to-missing": ({}, "to", "missing"),
    "misspelt": ({"too": "validation"}, "too", "extra_forbidden"),
    "extra-field": ({"to": "validation", "force": True}, "force", "extra_forbidden"),
}
ROLLBACKS: dict[str, tuple[Any, str, str]] = {
    "number": ({"to_version": 1}, "to_version", "string_type"),
    "null": ({"to_version": None}, "to_version", "string_type"),
    "path": ({"to_version": "../../1"}, "to_version", "string_pattern_mismatch"),
    "too-long": ({"to_version": "1" * 65}, "to_version", "string_pattern_mismatch"),
    "fullwidth": ({"to_version": "\uff11"}, "to_version", "string_pattern_mismatch"),
    "missing": ({}, "to_version", "missing"),
    "extra-field": ({"to_version": "1", "why": "x"}, "why", "extra_forbidden"),
}


@pytest.mark.parametrize(("body", "field", "rule"), PROMOTIONS.values(), ids=PROMOTIONS.keys())
def test_malformed_promotions_are_422_and_change_nothing(
    client: httpx.Client, engineer: dict[str, str], registered: str, body: Any, field: str,
    rule: str,
) -> None:  # fmt: skip
    response = client.post(f"/models/{registered}/1/promote", json=body, headers=engineer)

    assert_problem(response, 422, field, rule)
    assert statuses(client, engineer, registered) == {"1": "development"}


@pytest.mark.parametrize(("body", "field", "rule"), ROLLBACKS.values(), ids=ROLLBACKS.keys())
def test_malformed_rollbacks_are_422_and_change_nothing(
    client: httpx.Client, engineer: dict[str, str], registered: str, body: Any, field: str,
    rule: str,
) -> None:  # fmt: skip
    response = client.post(f"/models/{registered}/rollback", json=body, headers=engineer)

    assert_problem(response, 422, field, rule)
    assert statuses(client, engineer, registered) == {"1": "development"}


@pytest.mark.parametrize("path", ["/models/{name}/1/promote", "/models/{name}/rollback"])
@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"to": "validation"', b"\xff\xfe", b"", b'["validation"]', b'"1"', b"null"],
    ids=["bad", "cut", "bytes", "empty", "a-list", "a-string", "null"],
)
def test_unparseable_promote_and_rollback_bodies_are_client_errors(
    client: httpx.Client, engineer: dict[str, str], registered: str, path: str, content: bytes
) -> None:
    headers = {**engineer, "Content-Type": "application/json"}
    response = client.post(path.format(name=registered), content=content, headers=headers)

    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"]
    assert statuses(client, engineer, registered) == {"1": "development"}


def test_a_promotion_with_a_hundred_thousand_extra_fields_is_a_short_quick_422(
    client: httpx.Client, engineer: dict[str, str], registered: str
) -> None:
    body = {"to": "validation", **{f"k{i}": i for i in range(100_000)}}
    headers = {**engineer, "Content-Type": "application/json"}

    started = time.monotonic()
    response = client.post(
        f"/models/{registered}/1/promote", content=json.dumps(body).encode(), headers=headers
    )

    assert time.monotonic() - started < 10
    assert_problem(response, 422, "k0", "extra_forbidden")
    assert len(response.content) < 10_000  # the errors are capped, not one per key
    assert statuses(client, engineer, registered) == {"1": "development"}


def test_a_promotion_body_over_the_size_limit_is_413(
    client: httpx.Client, engineer: dict[str, str], registered: str
) -> None:
    content = b'{"to": "' + b"v" * (50 * 1024 * 1024 + 1) + b'"}'
    headers = {**engineer, "Content-Type": "application/json"}

    response = client.post(f"/models/{registered}/1/promote", content=content, headers=headers)

    assert response.status_code == 413, response.text[:500]
    assert response.headers["content-type"] == PROBLEM_JSON
    assert statuses(client, engineer, registered) == {"1": "development"}
    assert_still_serving(client)


def test_deleting_a_route_that_does_not_exist_is_404_naming_the_endpoint(
    client: httpx.Client, engineer: dict[str, str], auditor: dict[str, str]
) -> None:
    endpoint = f"never-routed-{uuid.uuid4().hex[:8]}"

    response = client.delete(f"/routes/{endpoint}", headers=engineer)

    assert_problem(response, 404, "endpoint", "routed")
    assert not [e for e in whole_trail(client, auditor) if e["object_id"] == endpoint]


@pytest.mark.parametrize("endpoint", ["bad%20name", "x" * 65, "%C3%A9t%C3%A9", "a%2Fb"])
def test_deleting_a_hostile_endpoint_is_a_client_error(
    client: httpx.Client, engineer: dict[str, str], endpoint: str
) -> None:
    response = client.delete(f"/routes/{endpoint}", headers=engineer)

    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
