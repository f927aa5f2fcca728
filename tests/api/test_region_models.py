"""Segmentation and detection models served end to end: a synthetic image with a bright
rectangle at a known place, sent as PNG and as DICOM, gets a mask and a box that land on
it in the source image's pixels (and mm); results are stored and audited with their
findings; a route's shadow copies get per-kind agreement stats."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient

from serve_app.auth.credentials import Credentials
from serve_app.catalog.store import ModelStore
from serve_app.http.app import create_local_app
from serve_app.runtime.kinds import rle
from serve_app.settings import ModelConfig, Settings
from tests.api.test_records import whole_trail
from tests.api.test_routes import put_route, shadow_copies, until_served
from tests.api.test_v2 import binary_body, length_prefixed, outputs_of
from tests.dicoms import grey_image_dicom
from tests.images import encode
from tests.local_app import own_database
from tests.problems import assert_problem

SEGMENTER = "lesion-seg-demo"
DETECTOR = "lesion-detect-demo"
ROWS, COLUMNS = 200, 300
TOP, LEFT, BOTTOM, RIGHT = 60, 90, 120, 210
"""The bright rectangle, in source pixels (bottom and right exclusive)."""


@pytest.fixture(scope="module")
def regions_inprocess(
    settings: Settings,
    credentials: Credentials,
    clinician: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    """The in-process app serving the region demos too (the served app's config does)."""
    models = [*settings.models, ModelConfig(name=SEGMENTER), ModelConfig(name=DETECTOR)]
    own = own_database(settings.model_copy(update={"models": models}), tmp_path_factory.mktemp("r"))
    with TestClient(create_local_app(own, credentials), headers=clinician) as client:
        yield client


@pytest.fixture(params=["inprocess", pytest.param("served", marks=pytest.mark.serve)])
def api(request: pytest.FixtureRequest) -> httpx.Client:
    name = "regions_inprocess" if request.param == "inprocess" else "served_client"
    return request.getfixturevalue(name)


def scene() -> np.ndarray:
    """Dark noise with one bright rectangle: (ROWS, COLUMNS, 1) uint8."""
    rng = np.random.default_rng(14)
    image = rng.integers(0, 40, (ROWS, COLUMNS, 1)).astype(np.uint8)
    image[TOP:BOTTOM, LEFT:RIGHT] = 230
    return image


def truth() -> np.ndarray:
    mask = np.zeros((ROWS, COLUMNS), bool)
    mask[TOP:BOTTOM, LEFT:RIGHT] = True
    return mask


def infer_file(
    api: httpx.Client, data: bytes, model: str, name: str = "image.png"
) -> httpx.Response:
    return api.post("/infer/file", files={"file": (name, data)}, data={"model": model})


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_the_mask_lands_on_the_object_in_source_pixels(
    api: httpx.Client, auditor: dict[str, str]
) -> None:
    answer = infer_file(api, encode(scene(), "PNG"), SEGMENTER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    findings = body["findings"]
    assert (findings["kind"], findings["height"], findings["width"]) == (
        "segmentation",
        ROWS,
        COLUMNS,
    )
    (region,) = findings["classes"]
    mask = rle.decode(region["mask"])
    assert mask.shape == (ROWS, COLUMNS)
    assert iou(mask, truth()) > 0.9
    assert region["pixel_count"] == int(mask.sum())
    assert region["area_mm2"] is None  # a PNG states no pixel spacing
    # the rectangle is 230 of 255: its pixels' scores sigmoid(20 * (0.9 - 0.5))
    assert body["prediction"] == "bright_region" and body["confidence_score"] > 0.99

    stored = api.get(f"/results/{body['inference_id']}", headers=auditor)
    assert stored.status_code == 200 and stored.json()["findings"] == findings
    entry = next(e for e in whole_trail(api, auditor) if e["object_id"] == body["inference_id"])
    assert len(entry["details"]["result_sha256"]) == 64
    assert api.get("/audit/verify", headers=auditor).json()["valid"] is True


def test_an_image_without_an_object_gets_empty_masks_and_no_box(api: httpx.Client) -> None:
    dark = np.full((ROWS, COLUMNS, 1), 10, np.uint8)
    mask = infer_file(api, encode(dark, "PNG"), SEGMENTER).json()
    assert (mask["prediction"], mask["findings"]["classes"][0]["pixel_count"]) == ("none", 0)
    boxes = infer_file(api, encode(dark, "PNG"), DETECTOR).json()
    assert (boxes["prediction"], boxes["findings"]["boxes"]) == ("none", [])


def test_the_box_lands_on_the_object_and_its_echo_is_suppressed(api: httpx.Client) -> None:
    answer = infer_file(api, encode(scene(), "PNG"), DETECTOR)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (box,) = body["findings"]["boxes"]  # the model's second, shifted box is suppressed
    assert box["label"] == body["prediction"] == "bright_region"
    # one model pixel is 300/128 = 2.3 source pixels wide
    assert box["box"] == pytest.approx([LEFT, TOP, RIGHT, BOTTOM], abs=3)
    assert box["box_mm"] is None
    assert body["confidence_score"] == pytest.approx(230 / 255, abs=0.01)  # its 5x5 mean


def test_a_dicom_with_pixel_spacing_gets_areas_and_boxes_in_mm(api: httpx.Client) -> None:
    dicom = grey_image_dicom(scene()[:, :, 0], PixelSpacing=["0.5", "0.8"])
    segmented = infer_file(api, dicom, SEGMENTER, "image.dcm").json()
    (region,) = segmented["findings"]["classes"]
    assert segmented["findings"]["pixel_spacing_mm"] == [0.5, 0.8]
    assert region["area_mm2"] == pytest.approx(region["pixel_count"] * 0.4, abs=1e-3)
    assert iou(rle.decode(region["mask"]), truth()) > 0.9
    detected = infer_file(api, dicom, DETECTOR, "image.dcm").json()
    (box,) = detected["findings"]["boxes"]
    # x by the column spacing (0.8 mm), y by the row spacing (0.5 mm)
    expected = [LEFT * 0.8, TOP * 0.5, RIGHT * 0.8, BOTTOM * 0.5]
    assert box["box_mm"] == pytest.approx(expected, abs=3)


def test_odd_pixel_spacing_is_dropped_not_trusted(api: httpx.Client) -> None:
    dicom = grey_image_dicom(scene()[:, :, 0], PixelSpacing=["NaN", "-3"])
    answer = infer_file(api, dicom, SEGMENTER, "image.dcm")
    assert answer.status_code == 200, answer.text
    assert answer.json()["findings"]["pixel_spacing_mm"] is None
    assert answer.json()["findings"]["classes"][0]["area_mm2"] is None


def test_a_batch_of_json_images_to_a_segmenter(api: httpx.Client) -> None:
    image = scene()
    body = {
        "width": COLUMNS,
        "height": ROWS,
        "dtype": "uint8",
        "data": image.ravel().tolist(),
        "model": SEGMENTER,
    }
    dark = body | {"data": [5] * (ROWS * COLUMNS)}
    answer = api.post("/infer/batch", json={"images": [body, dark, body]})
    assert answer.status_code == 200, answer.text
    results = [r["result"] for r in answer.json()["results"]]
    assert [r["prediction"] for r in results] == ["bright_region", "none", "bright_region"]
    assert results[0]["findings"] == results[2]["findings"]


def v2_files(api: httpx.Client, model: str, *files: bytes, **header: Any) -> httpx.Response:
    """Encoded files as one ``BYTES`` input over /v2, with the binary-data extension."""
    tensor = {"name": "image", "shape": [len(files)], "datatype": "BYTES"}
    body, headers = binary_body([(tensor, length_prefixed(*files))], **header)
    return api.post(f"/v2/models/{model}/infer", content=body, headers=headers)


def test_v2_answers_a_region_model_with_each_rows_findings(
    api: httpx.Client, auditor: dict[str, str]
) -> None:
    bright, dark = encode(scene(), "PNG"), encode(np.full((ROWS, COLUMNS, 1), 10, np.uint8), "PNG")
    answer = outputs_of(v2_files(api, SEGMENTER, bright, dark))
    assert list(answer) == ["findings", "prediction", "confidence", "inference_id"]
    assert answer["prediction"] == ["bright_region", "none"]
    findings = [json.loads(f) for f in answer["findings"]]
    assert findings[0] == infer_file(api, bright, SEGMENTER).json()["findings"]
    assert iou(rle.decode(findings[0]["classes"][0]["mask"]), truth()) > 0.9
    assert findings[1]["classes"][0]["pixel_count"] == 0
    for inference_id, found in zip(answer["inference_id"], findings, strict=True):
        assert api.get(f"/results/{inference_id}", headers=auditor).json()["findings"] == found

    # as binary data too, and a detector's boxes
    boxes = outputs_of(v2_files(api, DETECTOR, bright, parameters={"binary_data_output": True}))
    ((box,),) = [json.loads(f)["boxes"] for f in boxes["findings"]]
    assert box["box"] == pytest.approx([LEFT, TOP, RIGHT, BOTTOM], abs=3)


def test_v2_metadata_of_a_region_model_names_its_findings(api: httpx.Client) -> None:
    metadata = api.get(f"/v2/models/{DETECTOR}")
    assert metadata.status_code == 200, metadata.text
    (findings, *platform) = metadata.json()["outputs"]
    assert findings == {"name": "findings", "datatype": "BYTES", "shape": [-1]}
    assert [o["name"] for o in platform] == ["prediction", "confidence", "inference_id"]


def test_v2_asked_for_a_region_models_raw_output_names_the_rule(
    api: httpx.Client, model_store: Path
) -> None:
    raw = ModelStore(model_store).resolve(SEGMENTER).output_name
    refused = v2_files(api, SEGMENTER, encode(scene(), "PNG"), outputs=[{"name": raw}])
    assert refused.status_code == 404, refused.text
    assert raw in refused.json()["error"]


@pytest.mark.parametrize(
    ("make", "rule", "key"),
    [
        (
            lambda store: variant(store, DETECTOR, **{"medai.nms_iou": "1.5"}),
            "model-metadata",
            "medai.nms_iou",
        ),
        (
            lambda store: variant(store, DETECTOR, **{"medai.max_detections": "0"}),
            "model-metadata",
            "medai.max_detections",
        ),
        (
            lambda store: variant(store, SEGMENTER, **{"medai.threshold": "-0.5"}),
            "model-metadata",
            "medai.threshold",
        ),
        (
            lambda store: variant(store, SEGMENTER, **{"medai.background_index": "3"}),
            "model-metadata",
            "medai.background_index",
        ),
        (
            lambda store: variant(store, SEGMENTER, **{"medai.kind": "volume"}),
            "model-metadata",
            "medai.kind",
        ),
        # two labels for the one score map the segmenter puts out
        (
            lambda store: variant(store, SEGMENTER, **{"medai.labels": '["a", "b"]'}),
            "model-output",
            None,
        ),
        # boxes read as a segmentation's score maps
        (
            lambda store: variant(store, DETECTOR, **{"medai.kind": "segmentation"}),
            "model-output",
            None,
        ),
    ],
)
def test_bad_kind_settings_and_outputs_are_refused_at_registration(
    api: httpx.Client,
    engineer: dict[str, str],
    model_store: Path,
    make: Callable[[Path], bytes],
    rule: str,
    key: str | None,
) -> None:
    files = {"file": ("model.onnx", make(model_store))}
    form = {"name": "refused-region", "version": uuid.uuid4().hex[:8]}
    refused = api.post("/models", files=files, data=form, headers=engineer)
    assert_problem(refused, 422, "file", rule)
    (error,) = refused.json()["errors"]
    assert error.get("key") == key
    assert key is None or key in refused.json()["detail"]


def variant(model_store: Path, model: str, **metadata: str) -> bytes:
    """The demo ``model`` with other metadata: a new file, a new version."""
    store = ModelStore(model_store)
    loaded = onnx.load_from_string(store.read_verified(store.resolve(model, "1.0.0")))
    props = {p.key: p.value for p in loaded.metadata_props} | metadata
    onnx.helper.set_model_props(loaded, props)
    return loaded.SerializeToString()


@pytest.fixture
def endpoint(api: httpx.Client, engineer: dict[str, str]) -> Iterator[str]:
    name = f"regions-{uuid.uuid4().hex[:8]}"
    yield name
    api.delete(f"/routes/{name}", headers=engineer)


def register(api: httpx.Client, engineer: dict[str, str], model: str, data: bytes) -> str:
    version = f"v-{uuid.uuid4().hex[:8]}"
    files = {"file": ("model.onnx", data)}
    made = api.post(
        "/models", files=files, data={"name": model, "version": version}, headers=engineer
    )
    assert made.status_code == 201, made.text
    return f"{model}:{version}"


@pytest.mark.parametrize(
    ("model", "changed", "stat"),
    [
        (SEGMENTER, {"medai.threshold": "0.9"}, "mean_dice"),
        (DETECTOR, {"medai.threshold": "0.95"}, "count_agreement"),
    ],
)
def test_a_shadow_of_a_region_model_is_measured_by_its_kind(
    api: httpx.Client,
    engineer: dict[str, str],
    auditor: dict[str, str],
    model_store: Path,
    endpoint: str,
    model: str,
    changed: dict[str, str],
    stat: str,
) -> None:
    shadow = register(api, engineer, model, variant(model_store, model, **changed))
    arm = f"{model}:1.0.0"
    routed = put_route(api, engineer, endpoint, {arm: 1}, shadow=[shadow])
    assert routed.status_code == 200, routed.text
    until_served(api, lambda r: r.status_code == 200 and r.json()["arm"] == arm, endpoint)
    head = len(whole_trail(api, auditor))
    since = datetime.now(UTC).isoformat()  # the warm-up's noise images are left out
    answers = [infer_file(api, encode(scene(), "PNG"), endpoint) for _ in range(3)]
    assert all(a.status_code == 200 for a in answers)
    ids = {a.json()["inference_id"] for a in answers}
    assert len(shadow_copies(api, auditor, head, ids)) >= 3

    stats = api.get(f"/routes/{endpoint}/stats", params={"since": since}, headers=auditor)
    (shadowed,) = stats.json()["shadows"]
    assert shadowed["model"] == shadow
    if stat == "mean_dice":
        # a higher threshold cuts the blurred edge: close, not equal
        assert 0.9 < shadowed["mean_dice"] < 1.0
    else:
        # the box scores 0.9: the answer keeps it, the shadow at 0.95 does not
        assert shadowed["count_agreement"] == 0.0


def test_a_region_model_is_hot_swapped_and_rolled_back_like_any_other(
    api: httpx.Client, engineer: dict[str, str], model_store: Path
) -> None:
    # the same network and settings in a new file: every other test's answers stay the same
    ref = register(
        api,
        engineer,
        SEGMENTER,
        variant(model_store, SEGMENTER, **{"medai.description": ref_tag()}),
    )
    version = ref.split(":")[1]
    for status in ("validation", "production"):
        moved = api.post(
            f"/models/{SEGMENTER}/{version}/promote", json={"to": status}, headers=engineer
        )
        assert moved.status_code == 200, moved.text
    try:
        until_served(api, lambda r: r.json().get("model_version") == version, SEGMENTER)
        swapped = infer_file(api, encode(scene(), "PNG"), SEGMENTER).json()
        assert swapped["model_version"] == version
        assert iou(rle.decode(swapped["findings"]["classes"][0]["mask"]), truth()) > 0.9
    finally:
        back = api.post(
            f"/models/{SEGMENTER}/rollback", json={"to_version": "1.0.0"}, headers=engineer
        )
        assert back.status_code == 200, back.text
    until_served(api, lambda r: r.json().get("model_version") == "1.0.0", SEGMENTER)


def ref_tag() -> str:
    return f"hot swap {uuid.uuid4().hex[:8]}"


def test_a_route_mixing_kinds_is_refused(
    api: httpx.Client, engineer: dict[str, str], endpoint: str
) -> None:
    # NOTE: a mask and a label are no A/B comparison, and callers expect one answer shape
    segmenter, detector = f"{SEGMENTER}:1.0.0", f"{DETECTOR}:1.0.0"
    mixed_arms = put_route(api, engineer, endpoint, {segmenter: 1, detector: 1})
    assert_problem(mixed_arms, 422, "arms.1.model", "kind")
    classifier = "chest-xray-demo:1.0.0"
    mixed_shadow = put_route(api, engineer, endpoint, {classifier: 1}, shadow=[segmenter])
    assert_problem(mixed_shadow, 422, "shadow.0", "kind")
    assert api.get(f"/routes/{endpoint}", headers=engineer).status_code == 404
