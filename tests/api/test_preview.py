"""``POST /preview``: the upload as a model sees it, the console's picture beside an answer.
It decodes what ``/infer/file`` decodes, so it refuses exactly what inference refuses.
Against the in-process app and the app served by Ray."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.api.test_hostile_input import dicom_without_pixel_data
from tests.api.test_infer_file import upload
from tests.images import encode, pixels
from tests.problems import assert_problem, assert_still_serving
from tests.unit.test_dicom_codec import sample
from tests.unit.test_dicom_guards import deflated_with_padding, jpeg_declaring, with_frame
from tests.unit.test_images import png_declaring


def preview(api: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return api.post("/preview", files={"file": ("upload", data)}, data=fields)


def picture(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_the_ct_is_windowed_and_sized_for_the_default_model(api: httpx.Client) -> None:
    seen = picture(preview(api, sample("CT_small.dcm")))
    assert (seen.mode, seen.size) == ("L", (256, 256))  # chest-xray-demo: 1x256x256
    levels = np.asarray(seen)
    assert levels.min() < 64 and levels.max() > 192  # windowed to a visible range


def test_the_view_follows_the_named_model(api: httpx.Client) -> None:
    seen = picture(preview(api, encode(pixels(7, 80, 64), "PNG"), model="derm-demo"))
    assert (seen.mode, seen.size) == ("RGB", (224, 224))  # derm-demo: 3x224x224


def test_levels_are_the_pixels_scaled_to_8_bits(api: httpx.Client) -> None:
    wide = np.full((256, 256, 1), 32768, dtype=np.uint16)  # half of 16 bits, no resizing
    seen = picture(preview(api, encode(wide, "PNG")))
    assert set(np.asarray(seen).ravel().tolist()) == {128}


HOSTILE: list = [
    pytest.param(b"", {}, id="empty"),
    pytest.param(b"just some text", {}, id="text"),
    pytest.param(encode(pixels(2, 64, 64), "PNG")[:60], {}, id="truncated-png"),
    pytest.param(png_declaring(100_000, 100_000), {}, id="png-bomb"),
    pytest.param(
        with_frame("SC_rgb_jpeg_dcmtk.dcm", jpeg_declaring(65_000, 65_000)),
        {},
        id="dicom-jpeg-frame-bomb",
    ),
    pytest.param(deflated_with_padding(64 << 20), {}, id="dicom-deflate-bomb"),
    pytest.param(dicom_without_pixel_data(), {}, id="dicom-without-pixel-data"),
    pytest.param(encode(pixels(2, 64, 64), "PNG"), {"frame": "0"}, id="frame-of-a-png"),
    pytest.param(sample("CT_small.dcm"), {"frame": "5"}, id="frame-past-the-last"),
    pytest.param(sample("CT_small.dcm"), {"model": "no-such-model"}, id="unknown-model"),
    pytest.param(sample("CT_small.dcm"), {"model": "<script>"}, id="model-not-a-name"),
    pytest.param(sample("CT_small.dcm"), {"frame": "-1"}, id="negative-frame"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("data", "fields"), HOSTILE)
def test_preview_refuses_what_inference_refuses(
    api: httpx.Client, data: bytes, fields: dict[str, str]
) -> None:
    inferred = upload(api, data, **fields)
    previewed = preview(api, data, **fields)

    assert 400 <= inferred.status_code < 500, inferred.text
    (error,) = inferred.json()["errors"][:1]
    assert_problem(previewed, inferred.status_code, error["field"], error["rule"])
    assert_still_serving(api)


def test_who_may_preview(api: httpx.Client, token_for: Callable[..., str]) -> None:
    png = encode(pixels(2, 64, 64), "PNG")
    for role, status in (("auditor", 403), ("monitor", 403), ("ml_engineer", 200)):
        headers = {"Authorization": f"Bearer {token_for(role)}"}
        answered = api.post("/preview", files={"file": ("a", png)}, headers=headers)
        assert answered.status_code == status, answered.text
    request = api.build_request("POST", "/preview", files={"file": ("a", png)})
    del request.headers["authorization"]
    assert_problem(api.send(request), 401, "authorization", "missing")
