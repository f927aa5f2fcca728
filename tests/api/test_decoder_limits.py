"""Uploads are decoded in disposable workers: the next decoder bomb costs a worker.

The server here gives each decode 64 MiB, so a real 12 KB deflated DICOM that needs
~0.2 GiB to decode stands in for a bomb no header check knows yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from tests.api.test_infer_file import dicom_bytes, upload
from tests.dicoms import deflated_rgb_dicom
from tests.local_app import local_app
from tests.problems import assert_problem, assert_still_serving

LOW_MEMORY = {"memory_bytes": 64 * 1024 * 1024, "workers": 1}


@pytest.fixture(scope="module")
def low_memory_api(
    server_args: dict[str, Any],
    credentials: Credentials,
    clinician: dict,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    settings = Settings(**{**server_args, "decoding": LOW_MEMORY})
    app = local_app(settings, credentials, tmp_path_factory.mktemp("low_memory"))
    with TestClient(app, headers=clinician) as client:
        yield client


def test_a_decode_past_the_memory_limit_is_422_and_the_next_succeeds(
    low_memory_api: TestClient,
) -> None:
    response = upload(low_memory_api, deflated_rgb_dicom())

    assert_problem(response, 422, "file", "decoder-limit")
    assert "memory" in response.json()["detail"]
    assert upload(low_memory_api, dicom_bytes("CT_small.dcm")).status_code == 200
    assert_still_serving(low_memory_api)


def test_the_default_limit_decodes_the_same_file(api, model_store: Path) -> None:
    response = upload(api, deflated_rgb_dicom())

    assert response.status_code == 200, response.text
