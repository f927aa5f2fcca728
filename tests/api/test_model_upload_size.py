"""Model uploads have their own size limit: larger than an image's, still a limit."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import numpy_helper

from serve_app.auth.credentials import Credentials
from serve_app.settings import Settings
from tests.conftest import TokenFactory
from tests.local_app import local_app
from tests.problems import assert_problem
from tests.unit.onnx_builders import tiny_classifier

MIB = 1024 * 1024


def model_of(size_bytes: int) -> bytes:
    """A valid classifier carrying an unused initializer, to make it ``size_bytes`` big."""
    model = onnx.load_from_string(tiny_classifier([None, 1, 64, 64]))
    padding = np.zeros(size_bytes // 4, dtype=np.float32)
    model.graph.initializer.append(numpy_helper.from_array(padding, "padding"))
    return model.SerializeToString()


@pytest.fixture(scope="module")
def api(
    settings: Settings,
    credentials: Credentials,
    token_for: TokenFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    small = settings.model_copy(
        update={"limits": settings.limits.model_copy(
            update={"max_body_bytes": 1 * MIB, "max_model_bytes": 4 * MIB}
        )}
    )  # fmt: skip
    engineer = {"Authorization": f"Bearer {token_for('ml_engineer', sub='big-uploads')}"}
    app = local_app(small, credentials, tmp_path_factory.mktemp("small"))
    with TestClient(app, headers=engineer) as client:
        yield client


def upload(api: TestClient, data: bytes, path: str = "/models", version: str = "1"):  # type: ignore[no-untyped-def]
    files = {"file": ("model.onnx", data, "application/octet-stream")}
    return api.post(path, files=files, data={"name": "size-check", "version": version})


def test_a_model_over_the_image_limit_but_under_the_model_limit_is_registered(
    api: TestClient,
) -> None:
    data = model_of(2 * MIB)
    assert len(data) > MIB
    assert upload(api, data).status_code == 201
    # The same bytes anywhere else are over the general limit.
    assert_problem(upload(api, data, path="/infer/file"), 413, "body", "max-size")


def test_a_model_over_the_model_limit_is_413(api: TestClient) -> None:
    response = upload(api, model_of(5 * MIB), version="2")
    assert_problem(response, 413, "body", "max-size")
    assert f"{4 * MIB} bytes" in response.json()["detail"]
