"""The segmentation and detection demos: built byte-identical, registered as their kind,
and their hand-set weights find a bright region where it is (and ignore a lone hot pixel)."""

from __future__ import annotations

from functools import cache

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from serve_app.catalog.spec import ModelKind
from serve_app.demo_models import build_lesion_detect_demo, build_lesion_seg_demo
from serve_app.runtime.examine import examine
from serve_app.runtime.findings import Verdict

BUILDERS = {"segmentation": build_lesion_seg_demo, "detection": build_lesion_detect_demo}


@cache
def built(kind: str) -> bytes:
    return BUILDERS[kind]()


def run(kind: str, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(built(kind), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": image})
    return np.asarray(out)


def scene(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    image = np.full((1, 1, 128, 128), 0.1, dtype=np.float32)
    image[0, 0, top:bottom, left:right] = 0.95
    return image


@pytest.mark.parametrize("kind", BUILDERS)
def test_built_identically_registered_as_its_kind_and_nothing_refused(kind: str) -> None:
    assert BUILDERS[kind]() == built(kind)
    model = onnx.load_from_string(built(kind))
    assert model.ir_version <= 13 and "NOT for clinical use" in model.doc_string
    found = examine(built(kind))
    assert found.refusals == [] and found.spec is not None
    assert found.spec.metadata.kind is ModelKind(kind)
    assert [f.detail for f in found.findings if f.verdict is Verdict.GUESSED] == []


def test_the_segmenter_masks_the_bright_region_and_only_it() -> None:
    image = scene(30, 60, 50, 90)
    image[0, 0, 100, 10] = 1.0  # a lone hot pixel
    (probabilities,) = run("segmentation", image)
    mask = probabilities[0] > 0.5
    truth = np.zeros((128, 128), bool)
    truth[30:50, 60:90] = True
    assert (mask & ~truth).sum() == 0  # nothing outside the region
    assert (mask & truth).sum() >= 0.95 * truth.sum()  # the corners blur away


def test_the_detector_boxes_the_bright_region_then_an_echo_to_suppress() -> None:
    (boxes,) = run("detection", scene(30, 60, 50, 90))
    np.testing.assert_allclose(boxes[0], [60, 30, 90, 50, 0.95], atol=1e-4)
    np.testing.assert_allclose(boxes[1], [61, 31, 91, 51, 0.95 * 0.9], atol=1e-4)


def test_the_detector_sees_nothing_in_a_dark_image_with_a_hot_pixel() -> None:
    image = np.full((2, 1, 128, 128), 0.1, dtype=np.float32)
    image[1, 0, 5, 5] = 1.0
    for box in run("detection", image)[:, 0]:
        assert box[2] <= box[0] and box[3] <= box[1]  # empty: dropped by postprocessing
        assert box[4] < 0.5
