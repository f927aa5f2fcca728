"""Logs are JSON lines tied to a request id, and carry no pixels, tokens or patient ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serve_app.auth.credentials import Credentials
from serve_app.logs import Pseudonymizer, configure_logging
from tests.images import encode, infer_body, pixels

PATIENT = "MRN-0042-JANE-DOE"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("INFO", stream)
    yield stream
    for name in ("serve_app", "deployments"):
        logging.getLogger(name).removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_request_logs_json_with_its_id(
    inprocess_client: httpx.Client, log_lines: io.StringIO
) -> None:
    response = inprocess_client.post(
        "/infer", json=infer_body(pixels(1, 64, 64), patient_id=PATIENT)
    )
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    lines = [r for r in records(log_lines) if r["request_id"] == rid]
    by_message = {r["message"]: r for r in lines}
    assert by_message["request"] | {"duration_ms": 0} == by_message["request"] | {
        "method": "POST",
        "path": "/infer",
        "status": 200,
        "user": "test-clinician",
        "duration_ms": 0,
    }
    assert by_message["inference"]["model"] == "chest-xray-demo:1.0.0"
    assert {"time", "level", "logger"} <= set(by_message["request"])


def test_a_plain_client_request_id_is_kept(
    inprocess_client: httpx.Client, log_lines: io.StringIO
) -> None:
    inprocess_client.get("/healthz", headers={"x-request-id": "trace-abc.123"})
    inprocess_client.get("/healthz", headers={"x-request-id": "bad id {}"})
    ids = [r["request_id"] for r in records(log_lines)]
    assert ids[0] == "trace-abc.123"
    assert ids[1] != "bad id {}" and len(ids[1]) == 32


def test_patient_ids_are_pseudonymized_consistently(
    inprocess_client: httpx.Client, credentials: Credentials, log_lines: io.StringIO
) -> None:
    assert credentials.pseudonym_key is not None
    expected = Pseudonymizer(credentials.pseudonym_key.get_secret_value().encode())(PATIENT)
    body = infer_body(pixels(2, 64, 64), patient_id=PATIENT)
    inprocess_client.post("/infer", json=body)
    inprocess_client.post("/infer/batch", json={"images": [body, body | {"width": 1}]})
    png = encode(pixels(3, 64, 64), "PNG")
    inprocess_client.post(
        "/infer/file", files={"file": ("x.png", png)}, data={"patient_id": PATIENT}
    )
    patients = [r.get("patient") for r in records(log_lines) if r["message"] == "inference"]
    assert patients == [expected] * 4
    assert expected != Pseudonymizer(b"another key")(PATIENT)


def test_no_phi_token_or_pixels_reach_the_logs(
    inprocess_client: httpx.Client, log_lines: io.StringIO
) -> None:
    image = pixels(4, 64, 64)
    inprocess_client.post("/infer", json=infer_body(image, patient_id=PATIENT))
    inprocess_client.post("/infer", json=infer_body(image, patient_id=PATIENT) | {"width": 65})
    inprocess_client.post(
        "/infer", json=infer_body(image), headers={"authorization": "Bearer forged.token.value"}
    )
    text = log_lines.getvalue()
    token = inprocess_client.headers["authorization"].split()[1]
    assert PATIENT not in text and token not in text and "forged.token.value" not in text
    assert ", ".join(str(v) for v in image.ravel()[:8]) not in text
    refused = [r for r in records(log_lines) if r["message"] == "request refused"]
    assert refused and refused[0]["rule"] == "malformed"


def test_metrics_count_routes_refusals_and_inferences(api: httpx.Client) -> None:
    def sample(text: str, line_start: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(line_start)
        )

    def scrape() -> str:
        response = api.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/plain"
        )
        return response.text

    before = scrape()
    api.post("/infer", json=infer_body(pixels(5, 64, 64)))
    api.post("/infer", json=infer_body(pixels(5, 64, 64)), headers={"authorization": "Bearer x"})
    api.get(f"/no/such/{PATIENT}")
    after = scrape()
    ok = 'medai_http_requests_total{method="POST",route="/infer",status="200"}'
    assert sample(after, ok) == sample(before, ok) + 1
    refused = 'medai_requests_refused_total{rule="malformed",status="401"}'
    assert sample(after, refused) == sample(before, refused) + 1
    inferred = 'medai_inferences_total{model="chest-xray-demo:1.0.0",status="200"}'
    assert sample(after, inferred) == sample(before, inferred) + 1
    assert PATIENT not in after and 'route="unmatched"' in after


def test_a_mislabelled_file_is_logged_by_format_never_by_name(
    inprocess_client: httpx.Client, log_lines: io.StringIO
) -> None:
    png = encode(pixels(6, 64, 64), "PNG")
    response = inprocess_client.post("/infer/file", files={"file": (f"{PATIENT}.dcm", png)})
    assert response.status_code == 200, response.text

    rid = response.headers["x-request-id"]
    (line,) = [
        r
        for r in records(log_lines)
        if r["request_id"] == rid and r["message"] == "declared format differs from content"
    ]
    assert (line["declared"], line["declared_by"], line["detected"]) == (
        "dicom",
        "content-type",
        "png",
    )
    assert PATIENT not in log_lines.getvalue()
