from __future__ import annotations

import pickle
from http import HTTPStatus

import pytest

from serve_app.catalog.store import TamperedModel
from serve_app.errors import (
    PROBLEM_BASE,
    InvalidInput,
    MalformedRequest,
    MedAIError,
    ModelOutputInvalid,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)

ALL_ERRORS = [
    MedAIError,
    InvalidInput,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    ServiceUnavailable,
    TamperedModel,
    ModelOutputInvalid,
]


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_pickle_round_trip_keeps_class_and_every_field(cls: type[MedAIError]) -> None:
    errors = [{"field": "data", "rule": "range", "message": "too big"}, {"field": "width"}]
    original = cls("something is wrong", field="data", rule="range", errors=errors)

    restored = pickle.loads(pickle.dumps(original))

    assert type(restored) is cls
    assert restored.detail == "something is wrong"
    assert restored.field == "data"
    assert restored.rule == "range"
    assert restored.errors == errors
    assert restored.to_problem() == original.to_problem()


def test_pickle_round_trip_without_field_keeps_errors_empty() -> None:
    restored = pickle.loads(pickle.dumps(NotFound("no such model")))

    assert restored.field is None
    assert restored.rule is None
    assert restored.errors == []


def test_field_and_rule_make_one_error_entry() -> None:
    error = InvalidInput("width 10 is outside 64..2048", field="width", rule="range")

    assert error.errors == [
        {"field": "width", "rule": "range", "message": "width 10 is outside 64..2048"}
    ]


def test_to_problem_shape() -> None:
    problem = InvalidInput("bad pixel", field="data", rule="finite").to_problem()

    assert problem == {
        "type": "https://medai-flow.dev/problems/invalid-input",
        "title": "Invalid input",
        "status": 422,
        "detail": "bad pixel",
        "errors": [{"field": "data", "rule": "finite", "message": "bad pixel"}],
    }
    assert type(problem["status"]) is int


def test_to_problem_leaves_out_empty_errors() -> None:
    assert "errors" not in ServiceUnavailable("not ready").to_problem()


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (MedAIError, HTTPStatus.INTERNAL_SERVER_ERROR),
        (InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY),
        (MalformedRequest, HTTPStatus.BAD_REQUEST),
        (PayloadTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
        (UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
        (NotFound, HTTPStatus.NOT_FOUND),
        (ServiceUnavailable, HTTPStatus.SERVICE_UNAVAILABLE),
    ],
)
def test_status_and_type_url_per_class(cls: type[MedAIError], status: HTTPStatus) -> None:
    problem = cls("x").to_problem()

    assert problem["status"] == int(status)
    assert problem["type"] == PROBLEM_BASE + cls.slug
    assert problem["title"] == cls.title


def test_type_urls_are_distinct() -> None:
    assert len({cls.slug for cls in ALL_ERRORS}) == len(ALL_ERRORS)


def test_str_is_the_detail() -> None:
    error = UnsupportedMediaType("file is not PNG", field="file", rule="format")

    assert str(error) == "file is not PNG"
