"""POST /infer/batch: each image succeeds or fails alone, results stay with their images."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.images import infer_body, pixels
from tests.oracle import direct_outputs
from tests.problems import assert_problem, assert_still_serving


def test_batch_results_match_their_own_images(api: httpx.Client, model_store) -> None:
    images = [pixels(100 + i, 64 + 8 * i, 96) for i in range(6)]
    response = api.post(
        "/infer/batch", json={"images": [infer_body(im) for im in images], "priority": "high"}
    )
    assert response.status_code == 200, response.text
    batch = response.json()
    assert (batch["total_images"], batch["successful"], batch["failed"]) == (6, 6, 0)
    assert batch["priority"] == "high" and len(batch["batch_id"]) == 36
    for i, (item, image) in enumerate(zip(batch["results"], images, strict=True)):
        assert item["index"] == i and item["status"] == 200
        np.testing.assert_allclose(
            item["result"]["outputs"],
            direct_outputs(model_store, "chest-xray-demo", image),
            atol=1e-5,
            rtol=0,
        )


def test_a_bad_image_fails_alone(api: httpx.Client) -> None:
    good = infer_body(pixels(110, 64, 64))
    images = [
        good,
        {**good, "data": [300] * 4096},
        {**good, "model": "derm-demo"},
        {**good, "width": 4000, "data": [0] * 4000 * 64},
        {**good, "model": "missing"},
    ]
    batch = api.post("/infer/batch", json={"images": images}).json()
    assert (batch["successful"], batch["failed"]) == (2, 3)
    statuses = [item["status"] for item in batch["results"]]
    assert statuses == [200, 422, 200, 422, 404]
    assert batch["results"][1]["error"]["errors"][0] == {
        "field": "data",
        "rule": "range",
        "message": batch["results"][1]["error"]["detail"],
    }
    assert batch["results"][2]["result"]["model_name"] == "derm-demo"
    assert batch["results"][4]["error"]["errors"][0]["field"] == "model"


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ({"images": []}, "images", "too_short"),
        ({"images": [infer_body(pixels(1, 64, 64))] * 101}, "images", "max-items"),
        (
            {"images": [infer_body(pixels(1, 64, 64))], "priority": "urgent"},
            "priority",
            "literal_error",
        ),
        ({"images": [{"width": 64}]}, "images.0.data", "missing"),
        ({"images": "all of them"}, "images", "list_type"),
        ({}, "images", "missing"),
    ],
    ids=["empty", "over-100", "bad-priority", "image-missing-data", "not-a-list", "no-images"],
)
def test_batch_structure_rules(api: httpx.Client, payload, field, rule) -> None:
    assert_problem(api.post("/infer/batch", json=payload), 422, field, rule)
    assert_still_serving(api)


def test_priority_is_deprecated_accepted_and_ignored(
    inprocess_client: httpx.Client,
) -> None:
    """Nothing acts on ``priority``: marked deprecated, still accepted (extra fields are
    refused, so dropping it would break old clients) and echoed."""
    schemas = inprocess_client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["BatchInferRequest"]["properties"]["priority"]["deprecated"] is True
    assert schemas["BatchInferResponse"]["properties"]["priority"]["deprecated"] is True

    answers = {
        priority: inprocess_client.post(
            "/infer/batch",
            json={"images": [infer_body(pixels(5, 64, 64))], "priority": priority},
        ).json()
        for priority in ("low", "high")
    }

    assert [a["priority"] for a in answers.values()] == ["low", "high"]
    results = [a["results"][0]["result"] for a in answers.values()]
    assert results[0]["outputs"] == results[1]["outputs"]
