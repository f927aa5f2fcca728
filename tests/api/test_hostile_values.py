"""Security review issue 11, findings 2 and 3: what a few KB of DICOM, or a NaN, could do.

A segmented-LUT DICOM of a few KB held gigabytes in the preprocessor; a NaN
RescaleSlope decoded to NaN pixels, and a model answering NaN had its answer
accepted by the response schema and written to the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_app.audit.database_trail import DatabaseTrail
from serve_app.auth.credentials import Credentials
from serve_app.catalog.store import ModelStore
from serve_app.codecs.types import EncodedImage, ImageFormat
from serve_app.http.app import create_local_app
from serve_app.runtime.examine import inspect_model
from serve_app.settings import Settings
from tests.api.test_infer_file import assert_matches_oracle, upload
from tests.dicoms import grey_dicom, palette_dicom, segmented_lut_bomb
from tests.images import infer_body
from tests.local_app import own_database, stored_results
from tests.problems import assert_problem, assert_still_serving
from tests.unit.onnx_builders import log_of_brightness

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns of bad values


def test_segmented_lut_bomb_is_refused(api: httpx.Client) -> None:
    data = segmented_lut_bomb(250)
    assert len(data) < 10 * 1024  # a few KB, which pydicom expanded to 49 million entries

    response = upload(api, data)

    assert_problem(response, 422, "file", "lut-entries")
    assert "SegmentedRedPaletteColorLookupTableData (0028,1221)" in response.json()["detail"]
    assert_still_serving(api)


def test_legitimate_palette_dicoms_still_decode(api: httpx.Client, model_store: Path) -> None:
    # Discrete, linear and indirect segments, 256 entries; and a plain 8-bit table.
    segmented = palette_dicom(segments=[0, 28, *range(28), 1, 100, 65535, 2, 1, 0, 0, 1, 100, 0])
    for data in (segmented, palette_dicom(depth=8)):
        image = EncodedImage(data, ImageFormat.DICOM)
        assert_matches_oracle(upload(api, data), model_store, "chest-xray-demo", image)


@pytest.mark.parametrize(
    "scaling",
    [
        {"RescaleSlope": "NaN"},
        {"RescaleSlope": "1e308"},
        {"WindowCenter": "NaN", "WindowWidth": "400"},
    ],
    ids=["nan-slope", "overflowing-slope", "nan-window"],
)
def test_non_finite_dicom_values_are_refused(api: httpx.Client, scaling: dict[str, str]) -> None:
    response = upload(api, grey_dicom(**scaling))

    assert_problem(response, 422, "file", "finite")
    assert next(iter(scaling)) in response.json()["detail"]
    assert_still_serving(api)


@pytest.mark.parametrize(
    ("value", "rule"),
    [("1e308", "range"), ("3.5e38", "range"), ("1e400", "finite"), ("-1e400", "finite")],
    ids=["1e308", "over-float32-max", "overflows-to-inf", "overflows-to-minus-inf"],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_json_pixels_that_overflow_are_refused(
    api: httpx.Client, value: str, rule: str, dtype: str
) -> None:
    raw = f'{{"width": 64, "height": 64, "dtype": "{dtype}", "data": [{value}{", 0" * 4095}]}}'

    response = api.post("/infer", content=raw, headers={"content-type": "application/json"})

    assert_problem(response, 422, "data", rule)


# --- a model that answers NaN ----------------------------------------------------------


@pytest.fixture(scope="module")
def nan_model_api(
    tmp_path_factory: pytest.TempPathFactory,
    server_args: dict[str, Any],
    credentials: Credentials,
    clinician: dict,
) -> Iterator[tuple[TestClient, DatabaseTrail]]:
    """The app serving one model that answers NaN for dark images, with a trail to read."""
    store = tmp_path_factory.mktemp("nan_store")
    data = log_of_brightness()
    ModelStore(store).add(data, inspect_model(data, "nan-on-dark", "1"))
    settings = Settings(
        **{
            **server_args,
            "model_store": str(store),
            "models": [{"name": "nan-on-dark"}],
            "default_model": "nan-on-dark",
        }
    )
    own = own_database(settings, tmp_path_factory.mktemp("nan_data"))
    trail = DatabaseTrail(own, process_wide=False)
    app = create_local_app(own, credentials, trail)
    with TestClient(app, headers=clinician) as client:
        yield client, trail


DARK, BRIGHT = (np.full((64, 64, 1), value, np.uint8) for value in (20, 240))


def test_a_nan_answer_is_an_error_for_that_image(nan_model_api) -> None:
    api, trail = nan_model_api
    stored = len(stored_results(api, trail))

    response = api.post("/infer", json=infer_body(DARK))

    assert_problem(response, 422, "outputs", "finite")
    assert len(stored_results(api, trail)) == stored  # nothing with NaN reaches the trail
    assert api.post("/infer", json=infer_body(BRIGHT)).status_code == 200


def test_in_a_batch_only_the_nan_image_fails(nan_model_api) -> None:
    api, trail = nan_model_api
    stored = len(stored_results(api, trail))
    images = [infer_body(BRIGHT), infer_body(DARK), infer_body(BRIGHT)]

    response = api.post("/infer/batch", json={"images": images})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["status"] for item in body["results"]] == [200, 422, 200]
    assert (body["successful"], body["failed"]) == (2, 1)
    assert body["results"][1]["error"]["errors"][0] == {
        "field": "outputs",
        "rule": "finite",
        "message": body["results"][1]["error"]["detail"],
    }
    results = stored_results(api, trail)
    assert len(results) == stored + 2
    assert all(np.isfinite(r.outputs).all() for r in results)
