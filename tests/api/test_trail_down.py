"""No answer without its record: when the audit trail cannot be written, the client gets
a 503 to retry, never the result."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.audit.events import AuditEvent
from serve_app.auth.credentials import Credentials
from serve_app.errors import ServiceUnavailable
from serve_app.http.app import create_local_app
from serve_app.settings import Settings
from tests.api.test_registry import model_file, promote, register, unique_name
from tests.images import encode, infer_body, pixels
from tests.local_app import own_database
from tests.problems import assert_problem


class FlakyTrail(DatabaseTrail):
    """The trail on its own SQLite database, with the database 'down' while ``down`` is set."""

    down = False
    answer_lost = False
    """The write commits, but its answer never reaches the caller (a timeout)."""

    async def record(self, events: Sequence[AuditEvent]) -> None:
        if self.down:
            raise ServiceUnavailable("the audit store is unavailable")
        await super().record(events)
        if self.answer_lost:
            raise ServiceUnavailable("the audit store did not answer")


@pytest.fixture(scope="module")
def trail(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> FlakyTrail:
    return FlakyTrail(own_database(settings, tmp_path_factory.mktemp("flaky")), process_wide=False)


@pytest.fixture(scope="module")
def api(
    settings: Settings, credentials: Credentials, clinician: dict[str, str], trail: FlakyTrail
) -> Iterator[TestClient]:
    app = create_local_app(trail.settings, credentials, trail)
    with TestClient(app, headers=clinician) as client:
        yield client


@pytest.mark.parametrize(
    "send",
    [
        lambda api: api.post("/infer", json=infer_body(pixels(90, 64, 64))),
        lambda api: api.post("/infer/batch", json={"images": [infer_body(pixels(91, 64, 64))]}),
        lambda api: api.post(
            "/infer/file", files={"file": ("a.png", encode(pixels(92, 64, 64), "PNG"))}
        ),
    ],
    ids=["infer", "batch", "file"],
)
def test_an_unrecordable_answer_is_a_503_and_nothing_is_returned(
    api: TestClient, trail: FlakyTrail, send
) -> None:
    trail.down = True
    try:
        response = send(api)
    finally:
        trail.down = False
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert "outputs" not in response.text and "inference_id" not in response.text

    retried = send(api)
    assert retried.status_code == 200, retried.text


def test_a_401_is_sent_even_when_its_audit_entry_cannot_be(
    api: TestClient, trail: FlakyTrail
) -> None:
    trail.down = True
    try:
        response = api.post("/infer", headers={"Authorization": "Bearer x.y.z"})
    finally:
        trail.down = False
    assert_problem(response, 401, "authorization", "malformed")


def test_a_registration_the_trail_cannot_record_leaves_nothing_behind(
    api: TestClient, trail: FlakyTrail, engineer: dict[str, str]
) -> None:
    """Before the fix the file stayed in the catalog with no record: the retry was a 409
    and the version could never be promoted (404), for ever."""
    name = unique_name()
    # NOTE: the registry started (its adoptions recorded) while the trail was up, so the
    # outage meets the registration's own record.
    assert api.get("/models", headers=engineer).status_code == 200
    trail.down = True
    try:
        refused = register(api, engineer, name, "1.0.0")
    finally:
        trail.down = False
    assert refused.status_code == 503, refused.text
    retried = register(api, engineer, name, "1.0.0")
    assert retried.status_code == 201, retried.text
    promoted = promote(api, engineer, name, "1.0.0", "validation")
    assert promoted.status_code == 200, promoted.text


def test_a_registration_recorded_though_the_answer_was_lost_completes_on_retry(
    api: TestClient, trail: FlakyTrail, engineer: dict[str, str]
) -> None:
    """The record was written but the caller got a 503 and the entry was rolled back: the
    same file again restores the entry, without a second record."""
    name = unique_name()
    assert api.get("/models", headers=engineer).status_code == 200
    trail.answer_lost = True
    try:
        lost = register(api, engineer, name, "1.0.0")
    finally:
        trail.answer_lost = False
    assert lost.status_code == 503, lost.text
    retried = register(api, engineer, name, "1.0.0")
    assert retried.status_code == 201, retried.text
    listed = api.get("/models", params={"name": name}, headers=engineer).json()
    assert [m["version"] for m in listed] == ["1.0.0"]
    promoted = promote(api, engineer, name, "1.0.0", "validation")
    assert promoted.status_code == 200, promoted.text
    different = register(api, engineer, name, "1.0.0", model_file("another"))
    assert_problem(different, 409, "version", "unique")
