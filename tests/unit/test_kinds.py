"""Segmentation and detection postprocessing: masks and boxes land where the object is, on
the source image; bad outputs are refused by rule; hostile outputs stay bounded."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from serve_app.catalog.spec import ModelKind, ModelMetadata, ModelSpec
from serve_app.errors import ModelOutputInvalid
from serve_app.runtime.kinds import detection, interpret, rle, segmentation
from serve_app.runtime.kinds.geometry import SourceGeometry
from tests.unit.onnx_builders import make_spec

SIDE = 32


def spec(kind: ModelKind, labels: list[str], **meta: Any) -> ModelSpec:
    metadata = ModelMetadata(kind=kind, labels=labels, threshold=0.5, **meta)
    return make_spec([None, 1, SIDE, SIDE], metadata=metadata)


def blob_scores(top: int, left: int, bottom: int, right: int, classes: int = 1) -> np.ndarray:
    """(classes, SIDE, SIDE) probabilities: 0.9 inside the box on class 0, 0.1 elsewhere."""
    scores = np.full((classes, SIDE, SIDE), 0.1, dtype=np.float32)
    scores[0, top:bottom, left:right] = 0.9
    return scores


def test_rle_round_trips_and_counts_its_runs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = rng.integers(1, 12, 2)
        mask = rng.random((height, width)) < rng.random()
        encoded = rle.encode(mask)
        assert encoded["size"] == [height, width]
        assert len(encoded["counts"]) == rle.runs(mask)
        assert np.array_equal(rle.decode(encoded), mask)
    # COCO's order: column by column, the first run of zeros
    assert rle.encode(np.array([[1, 0], [1, 1]], bool))["counts"] == [0, 2, 1, 1]


def test_a_mask_is_mapped_back_onto_the_source_image_with_its_area() -> None:
    # the source was 64 rows by 96 columns: the model's 32x32 is stretched back
    geometry = SourceGeometry(64, 96, (0.5, 0.25))
    answer = interpret(
        blob_scores(8, 8, 16, 24), spec(ModelKind.SEGMENTATION, ["lesion"]), geometry
    )
    assert answer.findings is not None
    (lesion,) = answer.findings["classes"]
    mask = rle.decode(lesion["mask"])
    truth = np.zeros((64, 96), bool)
    truth[16:32, 24:72] = True
    assert np.array_equal(mask, truth)
    assert lesion["pixel_count"] == 16 * 48
    assert lesion["area_mm2"] == pytest.approx(16 * 48 * 0.5 * 0.25)
    assert (answer.prediction, answer.positive, answer.confidence) == ("lesion", True, 0.9)
    assert answer.findings["pixel_spacing_mm"] == [0.5, 0.25]


def test_without_spacing_no_area_and_an_empty_image_finds_nothing() -> None:
    scores = np.full((1, SIDE, SIDE), 0.2, dtype=np.float32)
    answer = interpret(scores, spec(ModelKind.SEGMENTATION, ["lesion"]), SourceGeometry(32, 32))
    assert answer.findings is not None
    (lesion,) = answer.findings["classes"]
    assert (lesion["pixel_count"], lesion["area_mm2"]) == (0, None)
    assert (answer.prediction, answer.positive) == (segmentation.NOTHING_FOUND, False)
    assert answer.confidence == pytest.approx(0.2)


def test_logits_softmax_over_classes_and_the_background_gets_no_mask() -> None:
    logits = np.zeros((2, SIDE, SIDE), dtype=np.float32)
    logits[0] = 4.0  # background everywhere...
    logits[1, 4:8, 4:8] = 8.0  # ...but here
    model = spec(ModelKind.SEGMENTATION, ["background", "organ"], background_index=0)
    model = model.model_copy(
        update={"metadata": model.metadata.model_copy(update={"output_kind": "logits"})}
    )
    answer = interpret(logits, model, SourceGeometry(SIDE, SIDE))
    assert answer.findings is not None
    assert [c["label"] for c in answer.findings["classes"]] == ["organ"]
    assert answer.findings["classes"][0]["pixel_count"] == 16
    assert len(answer.outputs) == 2


def test_a_mask_of_class_indexes_is_read_per_class() -> None:
    indexes = np.zeros((SIDE, SIDE), dtype=np.int64)
    indexes[0:4, 0:2] = 2
    model = spec(ModelKind.SEGMENTATION, ["background", "liver", "spleen"], background_index=0)
    answer = interpret(indexes, model, SourceGeometry(SIDE, SIDE))
    assert answer.findings is not None
    counts = {c["label"]: c["pixel_count"] for c in answer.findings["classes"]}
    assert counts == {"liver": 0, "spleen": 8}
    assert answer.prediction == "spleen"
    indexes[0, 0] = 7
    with pytest.raises(ModelOutputInvalid) as info:
        interpret(indexes, model, SourceGeometry(SIDE, SIDE))
    assert info.value.rule == "label-index"


@pytest.mark.parametrize("kind", [ModelKind.SEGMENTATION, ModelKind.DETECTION])
def test_nan_outputs_and_outputs_of_another_shape_are_refused(kind: ModelKind) -> None:
    model = spec(kind, ["lesion"])
    good = blob_scores(1, 1, 4, 4) if kind is ModelKind.SEGMENTATION else np.zeros((3, 5), "f4")
    bad = good.copy()
    bad.flat[3] = np.nan
    with pytest.raises(ModelOutputInvalid) as info:
        interpret(bad, model, SourceGeometry(SIDE, SIDE))
    assert (info.value.field, info.value.rule) == ("outputs", "finite")
    other = np.concatenate([good, good]) if kind is ModelKind.SEGMENTATION else good[:, :-1]
    with pytest.raises(ModelOutputInvalid) as info:
        interpret(other, model, SourceGeometry(SIDE, SIDE))
    assert info.value.rule == "shape"


def test_a_mask_as_fragmented_as_noise_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    checkerboard = (np.indices((SIDE, SIDE)).sum(axis=0) % 2).astype(np.float32)[np.newaxis]
    model = spec(ModelKind.SEGMENTATION, ["lesion"])
    # a 32-pixel checkerboard takes 993 runs; a 64-pixel source image four times as many
    monkeypatch.setattr(segmentation, "MAX_MASK_RUNS", 2000)
    interpret(checkerboard, model, SourceGeometry(SIDE, SIDE))
    with pytest.raises(ModelOutputInvalid) as info:
        interpret(checkerboard, model, SourceGeometry(2 * SIDE, 2 * SIDE))
    assert info.value.rule == "mask-size"


def boxes(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def test_boxes_are_thresholded_suppressed_and_mapped_to_source_pixels_and_mm() -> None:
    model = spec(ModelKind.DETECTION, ["nodule", "mass"], nms_iou=0.5)
    output = boxes(
        (4, 4, 12, 12, 0.9, 0.1),  # kept
        (5, 5, 13, 13, 0.8, 0.1),  # the same nodule: suppressed
        (5, 5, 13, 13, 0.1, 0.7),  # overlaps it, but another label: kept
        (20, 20, 30, 30, 0.4, 0.2),  # under the threshold
        (25, 2, 40, 10, 0.6, 0.0),  # reaches past the input: clipped at 32
    )
    answer = interpret(output, model, SourceGeometry(64, 128, (0.5, 0.2)))
    assert answer.findings is not None
    found = [(b["label"], b["score"], b["box"]) for b in answer.findings["boxes"]]
    assert found == [
        ("nodule", 0.9, [16.0, 8.0, 48.0, 24.0]),
        ("mass", 0.7, [20.0, 10.0, 52.0, 26.0]),
        ("nodule", 0.6, [100.0, 4.0, 128.0, 20.0]),
    ]
    assert answer.findings["boxes"][0]["box_mm"] == [3.2, 4.0, 9.6, 12.0]
    assert (answer.prediction, answer.confidence, answer.positive) == ("nodule", 0.9, True)
    assert answer.outputs == [0.9, 0.7]


def test_at_most_max_detections_boxes_and_none_without_one() -> None:
    model = spec(ModelKind.DETECTION, ["nodule"], max_detections=3)
    many = boxes(*((i, 0, i + 1, 1, 0.6 + i / 100) for i in range(30)))
    answer = interpret(many, model, SourceGeometry(SIDE, SIDE))
    assert answer.findings is not None
    assert [b["box"][0] for b in answer.findings["boxes"]] == [29.0, 28.0, 27.0]
    empty = interpret(boxes((0, 0, 0, 0, 0.9)), model, SourceGeometry(SIDE, SIDE))
    assert empty.findings is not None and empty.findings["boxes"] == []
    assert (empty.prediction, empty.positive, empty.confidence) == ("none", False, 0.0)


def test_suppression_is_bounded_and_deterministic() -> None:
    rng = np.random.default_rng(3)
    corners = rng.random((5000, 2)) * 20
    candidates = np.concatenate([corners, corners + 4], axis=1)
    scores = np.round(rng.random(5000), 2)  # ties broken by index
    labels = np.zeros(5000, dtype=np.int64)
    first = detection.suppress(candidates, scores, labels, 0.3, 1000)
    assert first == detection.suppress(candidates, scores, labels, 0.3, 1000)
    assert len(first) <= 1000
    kept = candidates[first]
    for i, box in enumerate(kept):
        assert (detection._iou(box, kept[i + 1 :]) <= 0.3).all()
