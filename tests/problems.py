"""Assertions on RFC 9457 problem responses, shared by the HTTP test layers."""

from __future__ import annotations

import httpx

from tests.images import infer_body, pixels

PROBLEM_JSON = "application/problem+json"


def assert_problem(
    response: httpx.Response, status: int, field: str, rule: str | None = None
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    fields = {e["field"]: e["rule"] for e in problem.get("errors", [])}
    assert field in fields, problem
    if rule is not None:
        assert fields[field] == rule, problem


def assert_still_serving(api: httpx.Client) -> None:
    response = api.post("/infer", json=infer_body(pixels(1, 64, 64)))
    assert response.status_code == 200, response.text
