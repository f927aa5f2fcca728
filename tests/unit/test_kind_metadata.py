"""A model's kind and its settings, read from its metadata and held to its output at
registration: each refusal names the metadata key; DICOM pixel spacing read or dropped;
per-kind A/B agreement of shadows."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

from serve_app.catalog.spec import MAX_REGION_LABELS, ModelKind, parse_metadata
from serve_app.codecs.dicom_reference import dicom_reference
from serve_app.codecs.dicom_spacing import pixel_spacing
from serve_app.errors import InvalidInput
from serve_app.routing.overlap import dice, mask_dice, same_count
from serve_app.routing.stats import summarize
from serve_app.runtime.examine import examine
from serve_app.runtime.findings import Verdict
from serve_app.runtime.kinds import rle
from tests.unit.onnx_builders import mean_filled_model

SEGMENTER = {"medai.kind": "segmentation", "medai.labels": ["lesion"]}
DETECTOR = {"medai.kind": "detection", "medai.labels": ["nodule", "mass"]}


def props(values: dict[str, Any]) -> dict[str, str]:
    import json

    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"medai.kind": "regression"}, "medai.kind"),
        (DETECTOR | {"medai.nms_iou": 1.5}, "medai.nms_iou"),
        (DETECTOR | {"medai.nms_iou": -0.1}, "medai.nms_iou"),
        (DETECTOR | {"medai.max_detections": 0}, "medai.max_detections"),
        (DETECTOR | {"medai.max_detections": 10**6}, "medai.max_detections"),
        (DETECTOR | {"medai.threshold": 2}, "medai.threshold"),
        (SEGMENTER | {"medai.threshold": "NaN"}, "medai.threshold"),
        (
            SEGMENTER | {"medai.labels": [f"c{i}" for i in range(MAX_REGION_LABELS + 1)]},
            "medai.labels",
        ),
        (SEGMENTER | {"medai.labels": ["a", "a"]}, "medai.labels"),
        (SEGMENTER | {"medai.background_index": 1}, "medai.background_index"),
        ({"medai.labels": ["only"]}, "medai.labels"),  # a classifier needs two
    ],
)
def test_bad_kind_settings_are_refused_naming_the_key(values: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_metadata(props(values))
    error = info.value
    assert (error.field, error.rule) == ("file", "model-metadata")
    assert error.errors[0]["key"] == key and key in error.detail


def test_kind_settings_are_read() -> None:
    meta = parse_metadata(props(DETECTOR | {"medai.nms_iou": 0.3, "medai.max_detections": 7}))
    assert (meta.kind, meta.nms_iou, meta.max_detections) == (ModelKind.DETECTION, 0.3, 7)
    assert parse_metadata({}).kind is ModelKind.CLASSIFICATION


@pytest.mark.parametrize(
    ("dims", "metadata", "integral"),
    [
        ((1, 32, 32), SEGMENTER, False),
        ((16, 16), SEGMENTER | {"medai.labels": ["bg", "lesion"]}, True),
        ((1, 16, 16), SEGMENTER | {"medai.labels": ["bg", "lesion"]}, True),
        ((100, 6), DETECTOR, False),
    ],
)
def test_outputs_that_fit_their_kind_register(
    dims: tuple[int, ...], metadata: dict[str, Any], integral: bool
) -> None:
    found = examine(mean_filled_model(dims, metadata, integral=integral))
    assert found.refusals == [] and found.spec is not None
    assert found.spec.metadata.kind is ModelKind(metadata["medai.kind"])


@pytest.mark.parametrize(
    ("dims", "metadata", "integral", "says"),
    [
        ((2, 32, 32), SEGMENTER, False, "one class per label (1)"),
        ((1, 64, 64), SEGMENTER, False, "not within the input's 32x32"),
        ((3,), SEGMENTER, False, "(batch, classes, height, width)"),
        ((2, 16, 16), SEGMENTER, True, "class indexes"),
        ((100, 5), DETECTOR, False, "(batch, boxes, 6)"),
        ((100,), DETECTOR, False, "(batch, boxes, 6)"),
        ((100_001, 6), DETECTOR, False, "at most 100000"),
        (
            (2, 6),
            SEGMENTER | {"medai.kind": "classification", "medai.labels": ["a", "b"]},
            False,
            "labels",
        ),
    ],
)
def test_outputs_that_do_not_fit_their_kind_are_refused(
    dims: tuple[int, ...], metadata: dict[str, Any], integral: bool, says: str
) -> None:
    found = examine(mean_filled_model(dims, metadata, integral=integral))
    (refusal,) = found.refusals
    assert refusal.rule == "model-output" and says in refusal.detail, refusal.detail
    assert found.spec is None
    assert refusal.error().field == "file"


def test_a_detector_tells_which_settings_it_assumed() -> None:
    found = examine(mean_filled_model((10, 6), DETECTOR))
    guessed = " ".join(f.detail for f in found.findings if f.verdict is Verdict.GUESSED)
    assert "medai.nms_iou" in guessed and "medai.max_detections" in guessed
    assert "positive_index" not in guessed


def dataset(spacing: Any) -> Dataset:
    ds = Dataset()
    if spacing is not None:
        ds.PixelSpacing = spacing
    return ds


@pytest.mark.parametrize(
    ("spacing", "read"),
    [
        (["0.5", "0.25"], (0.5, 0.25)),
        ([0.7, 0.7], (0.7, 0.7)),
        (None, None),
        (["0.5"], None),
        (["0.5", "0.5", "0.5"], None),
        (["0", "0.5"], None),
        (["-1", "0.5"], None),
        (["nan", "0.5"], None),
        (["inf", "0.5"], None),
        (["1e300", "0.5"], None),
        (["101", "0.5"], None),
    ],
)
def test_pixel_spacing_is_read_or_dropped_never_trusted(spacing: Any, read: Any) -> None:
    assert pixel_spacing(dataset(spacing)) == read


def test_pixel_spacing_that_is_not_a_number_is_dropped() -> None:
    ds = Dataset()
    ds.add_new(0x00280030, "LO", "wide\\tall")
    assert pixel_spacing(ds) is None


def test_dice_on_runs_equals_dice_on_pixels() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        a, b = rng.random((2, 7, 9)) < rng.random()
        both = a.sum() + b.sum()
        expected = 1.0 if both == 0 else 2 * (a & b).sum() / both
        assert dice(rle.encode(a)["counts"], rle.encode(b)["counts"]) == pytest.approx(expected)


def segmentation(mask: np.ndarray) -> dict[str, Any]:
    return {"kind": "segmentation", "classes": [{"label": "x", "mask": rle.encode(mask)}]}


def detections(n: int) -> dict[str, Any]:
    return {"kind": "detection", "boxes": [{}] * n}


def row(inference_id: str, arm: str, findings: dict[str, Any], shadow_of: str | None = None) -> Any:
    return SimpleNamespace(
        inference_id=inference_id,
        arm=arm,
        shadow_of=shadow_of,
        latency_ms=1.0,
        prediction="x",
        positive=True,
        findings=findings,
    )


def test_shadow_stats_give_mean_dice_for_masks_and_count_agreement_for_boxes() -> None:
    half = np.zeros((4, 4), bool)
    half[:2] = True
    quarter = np.zeros((4, 4), bool)
    quarter[:1] = True
    results = [
        row("a1", "seg:1", segmentation(half)),
        row("s1", "seg:2", segmentation(half), shadow_of="a1"),
        row("a2", "seg:1", segmentation(half)),
        row("s2", "seg:2", segmentation(quarter), shadow_of="a2"),  # Dice 2*4/(8+4)
        row("d1", "det:1", detections(2)),
        row("t1", "det:2", detections(2), shadow_of="d1"),
        row("d2", "det:1", detections(1)),
        row("t2", "det:2", detections(3), shadow_of="d2"),
    ]
    stats = summarize("e", results)
    by_model = {s.model: s for s in stats.shadows}
    assert by_model["seg:2"].mean_dice == pytest.approx((1 + 8 / 12) / 2, abs=1e-6)
    assert by_model["seg:2"].count_agreement is None
    assert by_model["det:2"].count_agreement == 0.5 and by_model["det:2"].mean_dice is None
    assert all(arm.mean_dice is None for arm in stats.arms)
    assert mask_dice(detections(1), segmentation(half)) is None
    assert same_count(segmentation(half), detections(1)) is None


def referenced(**attributes: Any) -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", "1.2.3.4"
    ds.SOPInstanceUID, ds.SOPClassUID = "1.2.3.4.5", "1.2.840.10008.5.1.4.1.1.2"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_a_dicom_reference_keeps_uids_and_sane_geometry_never_identity() -> None:
    ds = referenced(
        PatientName="Doe^Jane",
        PatientID="MRN-1",
        FrameOfReferenceUID="1.2.9",
        ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
        ImagePositionPatient=["-10", "nan", "3"],  # odd: dropped
        SliceThickness="2.5",
    )
    reference = dicom_reference(ds, frame=0, frames=1)
    assert reference is not None
    assert reference["SOPInstanceUID"] == "1.2.3.4.5"
    assert reference["FrameOfReferenceUID"] == "1.2.9"
    assert reference["ImageOrientationPatient"] == [1, 0, 0, 0, 1, 0]
    assert reference["ImagePositionPatient"] is None
    assert reference["SliceThickness"] == 2.5
    assert reference["frame_number"] is None
    assert "Doe" not in str(reference) and "MRN" not in str(reference)
    multi_frame = dicom_reference(ds, frame=4, frames=9)
    assert multi_frame is not None and multi_frame["frame_number"] == 5


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SOPInstanceUID", "SOPClassUID"])
def test_without_a_valid_uid_there_is_no_reference(keyword: str) -> None:
    ds = referenced()
    setattr(ds, keyword, "not a uid!")
    assert dicom_reference(ds, 0, 1) is None
    del ds[keyword]
    assert dicom_reference(ds, 0, 1) is None
