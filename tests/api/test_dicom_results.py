"""``GET /results/{inference_id}/dicom``: a SEG for masks, a Comprehensive SR (TID 1500)
for a classifier's finding or a detection's boxes, made from the stored result alone,
referring to the source image, naming the algorithm, and read back to the same findings
with highdicom. Sources are the CT and MR slices that ship with pydicom."""

from __future__ import annotations

import io
from typing import Any

import highdicom as hd
import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import MultiFrameGrayscaleByteSecondaryCaptureImageStorage, generate_uid

from serve_app.runtime.kinds import rle
from tests.api.test_region_models import DETECTOR, SEGMENTER, api, regions_inprocess, scene
from tests.conftest import TokenFactory
from tests.dicoms import grey_image_dicom
from tests.images import encode
from tests.problems import assert_problem

__all__ = ["api", "regions_inprocess"]  # the fixtures, in process and served

SOURCES = ["CT_small.dcm", "MR_small.dcm"]


def source(name: str) -> tuple[bytes, pydicom.Dataset]:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom ships {name}"
    with open(path, "rb") as f:
        data = f.read()
    return data, pydicom.dcmread(io.BytesIO(data))


def answer(api: httpx.Client, data: bytes, model: str) -> dict[str, Any]:
    response = api.post("/infer/file", files={"file": ("image.dcm", data)}, data={"model": model})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def dicom_of(api: httpx.Client, inference_id: str, **headers: str) -> httpx.Response:
    return api.get(f"/results/{inference_id}/dicom", headers=headers or None)


def read(response: httpx.Response) -> pydicom.Dataset:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom"
    return pydicom.dcmread(io.BytesIO(response.content))


def algorithm_of(group: pydicom.Dataset) -> tuple[str, str]:
    """The algorithm name and version a measurement group names (TID 4019)."""
    (container,) = group
    items = {
        i.ConceptNameCodeSequence[0].CodeMeaning: i.get("TextValue")
        for i in container.ContentSequence
    }
    return items["Algorithm Name"], items["Algorithm Version"]


def assert_refers_to(ds: pydicom.Dataset, src: pydicom.Dataset) -> None:
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SeriesInstanceUID not in (src.SeriesInstanceUID, None)
    assert not ds.get("PatientName") and not ds.get("PatientID")  # never stored


@pytest.mark.parametrize("name", SOURCES)
def test_a_segmentation_is_a_seg_that_round_trips_to_its_masks(
    api: httpx.Client, name: str
) -> None:
    data, src = source(name)
    body = answer(api, data, SEGMENTER)
    seg = hd.seg.Segmentation.from_dataset(read(dicom_of(api, body["inference_id"])))

    assert_refers_to(seg, src)
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == src.SeriesInstanceUID
    assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    (segment,) = seg.SegmentSequence
    assert segment.SegmentLabel == "bright_region"
    (algorithm,) = segment.SegmentationAlgorithmIdentificationSequence
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (SEGMENTER, "1.0.0")
    stored = api.get(f"/results/{body['inference_id']}").json()
    assert f"model_sha256={stored['model_sha256']}" in algorithm.AlgorithmParameters
    pixels = seg.get_pixels_by_source_instance([src.SOPInstanceUID], combine_segments=False)
    mask = rle.decode(body["findings"]["classes"][0]["mask"])
    assert mask.any()
    assert np.array_equal(pixels[0, :, :, 0].astype(bool), mask)


def test_a_detection_is_an_sr_whose_boxes_round_trip(api: httpx.Client) -> None:
    data, src = source("CT_small.dcm")
    body = answer(api, data, DETECTOR)
    sr = hd.sr.ComprehensiveSR.from_dataset(read(dicom_of(api, body["inference_id"])))
    assert sr.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    assert_refers_to(sr, src)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID

    groups = sr.content.get_planar_roi_measurement_groups()
    boxes = body["findings"]["boxes"]
    assert len(groups) == len(boxes) >= 1
    for group, box in zip(groups, boxes, strict=True):
        assert group.finding_type.meaning == box["label"]
        x0, y0, x1, y1 = box["box"]
        corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        np.testing.assert_allclose(group.roi.value, corners)
        (score,) = group.get_measurements()
        assert score.value == pytest.approx(box["score"])
        assert algorithm_of(group) == (DETECTOR, "1.0.0")


def test_a_classification_is_an_sr_finding_with_its_confidence(api: httpx.Client) -> None:
    data, src = source("CT_small.dcm")
    body = answer(api, data, "chest-xray-demo")
    sr = hd.sr.ComprehensiveSR.from_dataset(read(dicom_of(api, body["inference_id"])))
    assert_refers_to(sr, src)
    (group,) = sr.content.get_image_measurement_groups()
    assert group.finding_type.meaning == body["prediction"]
    measurements = {m.name.meaning: m.value for m in group.get_measurements()}
    assert measurements["Score"] == pytest.approx(body["confidence_score"])
    assert measurements["Decision threshold"] == pytest.approx(body["threshold"])
    assert algorithm_of(group) == ("chest-xray-demo", "1.0.0")


@pytest.mark.parametrize("model", [SEGMENTER, DETECTOR, "chest-xray-demo"])
def test_the_same_result_gives_the_same_object_another_result_another(
    api: httpx.Client, model: str
) -> None:
    data, _ = source("MR_small.dcm")
    first, second = answer(api, data, model), answer(api, data, model)
    once = dicom_of(api, first["inference_id"])
    again = dicom_of(api, first["inference_id"])
    assert once.content == again.content
    other = read(dicom_of(api, second["inference_id"]))
    assert read(once).SOPInstanceUID != other.SOPInstanceUID


def test_inputs_without_dicom_uids_have_no_dicom_result(api: httpx.Client) -> None:
    png = api.post(
        "/infer/file", files={"file": ("a.png", encode(scene(), "PNG"))}, data={"model": SEGMENTER}
    )
    assert_problem(dicom_of(api, png.json()["inference_id"]), 404, "inference_id", "dicom-source")
    # a DICOM without Study and Series Instance UIDs
    bare = answer(api, grey_image_dicom(scene()[:, :, 0]), DETECTOR)
    assert_problem(dicom_of(api, bare["inference_id"]), 404, "inference_id", "dicom-source")


def test_someone_elses_dicom_result_is_not_found_and_reads_are_audited(
    api: httpx.Client, token_for: TokenFactory, auditor: dict[str, str]
) -> None:
    data, _ = source("CT_small.dcm")
    body = answer(api, data, SEGMENTER)
    other = {"Authorization": f"Bearer {token_for('clinician', sub='someone-else')}"}
    assert_problem(dicom_of(api, body["inference_id"], **other), 404, "inference_id", "exists")
    assert dicom_of(api, body["inference_id"], **auditor).status_code == 200
    from tests.api.test_records import whole_trail

    reads = [
        e
        for e in whole_trail(api, auditor)
        if e["action"] == "result.read" and e["details"].get("inference_id") == body["inference_id"]
    ]
    assert [e["details"].get("format") for e in reads] == ["dicom"]


def multi_frame(frames: int = 3) -> bytes:
    pixels = np.stack([scene()[:, :, 0]] * frames)
    ds = pydicom.dcmread(io.BytesIO(grey_image_dicom(pixels[0])))
    ds.NumberOfFrames = frames
    ds.SOPClassUID = MultiFrameGrayscaleByteSecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.PixelData = pixels.tobytes()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_frame_of_a_multi_frame_image_is_referenced_by_its_number(api: httpx.Client) -> None:
    data = multi_frame()
    response = api.post(
        "/infer/file", files={"file": ("m.dcm", data)}, data={"model": DETECTOR, "frame": "2"}
    )
    assert response.status_code == 200, response.text
    sr = hd.sr.ComprehensiveSR.from_dataset(read(dicom_of(api, response.json()["inference_id"])))
    (group,) = sr.content.get_planar_roi_measurement_groups()
    (image,) = group.roi.ContentSequence
    assert image.ReferencedSOPSequence[0].ReferencedFrameNumber == 3
    segmented = api.post(
        "/infer/file", files={"file": ("m.dcm", data)}, data={"model": SEGMENTER, "frame": "2"}
    )
    refused = dicom_of(api, segmented.json()["inference_id"])
    assert_problem(refused, 422, "inference_id", "multi-frame")
