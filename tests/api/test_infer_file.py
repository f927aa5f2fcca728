"""POST /infer/file: PNG, JPEG and DICOM by content; every real pydicom sample; hostile files."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from serve_app.codecs.types import EncodedImage, ImageFormat
from tests.images import encode, pixels
from tests.oracle import direct_outputs
from tests.problems import assert_problem, assert_still_serving


def upload(
    api: httpx.Client,
    data: bytes,
    name: str = "upload",
    content_type: str | None = None,
    **fields: str,
) -> httpx.Response:
    file = (name, data, content_type) if content_type else (name, data)
    return api.post("/infer/file", files={"file": file}, data=fields)


def upload_untyped(api: httpx.Client, data: bytes, name: str = "scan.dcm") -> httpx.Response:
    """An upload whose part has no Content-Type at all (httpx always writes one)."""
    boundary = "medai-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'
    return api.post(
        "/infer/file",
        content=head.encode() + data + f"\r\n--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )


def assert_matches_oracle(
    response: httpx.Response, model_store: Path, model: str, image: EncodedImage
) -> dict:
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model_name"] == model
    np.testing.assert_allclose(
        result["outputs"], direct_outputs(model_store, model, image), atol=1e-5, rtol=0
    )
    return result


@pytest.mark.parametrize(
    ("image", "fmt", "options"),
    [
        (pixels(20), "PNG", {}),
        (pixels(21, 300, 260, dtype="uint16"), "PNG", {}),
        (pixels(22, 200, 240, channels=3), "PNG", {}),
        (pixels(23, 256, 256), "JPEG", {"quality": 90}),
        (pixels(24, 512, 384, channels=3), "JPEG", {"quality": 80}),
    ],
    ids=["png-grey8", "png-grey16", "png-rgb", "jpeg-grey", "jpeg-rgb"],
)
@pytest.mark.parametrize("model", ["chest-xray-demo", "derm-demo"])
def test_png_and_jpeg(api: httpx.Client, model_store, image, fmt, options, model) -> None:
    data = encode(image, fmt, **options)
    assert_matches_oracle(
        upload(api, data, model=model), model_store, model, EncodedImage(data, ImageFormat[fmt])
    )


MISLABELLED = {
    "PNG": lambda: encode(pixels(25, 128, 128), "PNG"),
    "JPEG": lambda: encode(pixels(26, 128, 128), "JPEG", quality=90),
    "DICOM": lambda: dicom_bytes("CT_small.dcm"),
}
"""One file of each supported format, to be sent under every other format's name or type."""


@pytest.mark.parametrize(
    ("fmt", "name", "part_type"),
    [
        ("PNG", "scan.dcm", None),  # httpx, as a browser, derives application/dicom
        ("PNG", "scan.dcm", "application/octet-stream"),
        ("PNG", "scan.dcm", "untyped"),  # a part with no Content-Type at all
        ("PNG", "scan.jpg", None),
        ("PNG", "scan.png", "image/jpeg"),
        ("JPEG", "scan.dcm", None),
        ("JPEG", "scan.png", None),
        ("JPEG", "scan.jpg", "application/dicom"),
        ("DICOM", "scan.png", None),
        ("DICOM", "scan.jpg", None),
        ("DICOM", "scan.dcm", "image/png"),
        ("DICOM", "scan", "image/jpeg"),
    ],
)
def test_format_comes_from_content_not_name(
    api: httpx.Client, model_store, fmt: str, name: str, part_type: str | None
) -> None:
    """A misnamed or mistyped file is served as what its bytes are (the disagreement is
    only logged: tests/unit/test_sniff.py)."""
    data = MISLABELLED[fmt]()
    response = (
        upload_untyped(api, data, name=name)
        if part_type == "untyped"
        else upload(api, data, name=name, content_type=part_type)
    )
    assert_matches_oracle(
        response, model_store, "chest-xray-demo", EncodedImage(data, ImageFormat[fmt])
    )


@pytest.mark.parametrize(
    ("data", "name", "found"),
    [
        (b"GIF89a" + b"\x00" * 300, "scan.png", "GIF"),
        (b"%PDF-1.7\n" + b"x" * 300, "scan.dcm", "PDF"),
        (b"II*\x00" + b"\x00" * 300, "scan.jpg", "TIFF"),
    ],
)
def test_content_that_is_no_supported_image_is_a_415_naming_it(
    api: httpx.Client, data: bytes, name: str, found: str
) -> None:
    response = upload(api, data, name=name)
    assert_problem(response, 415, "file", "format")
    assert response.json()["detail"].startswith(f"file content is {found};")


DICOM_ACCEPTED = [
    "693_J2KI.dcm",
    "CT_small.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jls_lossy_line.dcm",
    "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_jpeg2k.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "liver_expb_1frame.dcm",
]
"""Every pydicom sample with pixel data whose size fits the default limits (64..2048)."""

DICOM_REJECTED = [
    # (file, status, rule): too small, corrupt, no pixel data, or unsupported depth.
    ("ExplVR_BigEnd.dcm", 422, "range"),
    ("rtdose.dcm", 422, "range"),
    ("SC_rgb_small_odd.dcm", 422, "range"),
    ("JPEGLSNearLossless_08.dcm", 422, "range"),
    ("MR_truncated.dcm", 422, "dicom"),
    ("JPEG-lossy.dcm", 422, "dicom"),  # a misplaced JPEG marker: every decoder refuses it
    # A sequence delimiter inside its SIZ header makes the frame declare 3722445056 columns.
    ("JPEG2000-embedded-sequence-delimiter.dcm", 422, "range"),
    ("meta_missing_tsyntax.dcm", 422, "dicom"),
    # No preamble, so no DICM at byte 128: sniffing finds no format it accepts.
    ("no_meta.dcm", 415, "format"),
    ("waveform_ecg.dcm", 422, "dicom-pixel-data"),
    ("rtplan.dcm", 422, "dicom-pixel-data"),
    ("SC_rgb_rle_32bit.dcm", 415, "dicom-bits"),
]


def dicom_bytes(name: str) -> bytes:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not shipped with this pydicom")
    return Path(path).read_bytes()


@pytest.mark.parametrize("name", DICOM_ACCEPTED)
def test_every_fitting_pydicom_sample(api: httpx.Client, model_store, name: str) -> None:
    data = dicom_bytes(name)
    result = assert_matches_oracle(
        upload(api, data), model_store, "chest-xray-demo", EncodedImage(data, ImageFormat.DICOM)
    )
    assert result["frames"] >= 1 and result["frame"] == result["frames"] // 2


@pytest.mark.parametrize(
    ("name", "status", "rule"), DICOM_REJECTED, ids=[r[0] for r in DICOM_REJECTED]
)
def test_unusable_pydicom_samples_are_4xx(api: httpx.Client, name, status, rule) -> None:
    assert_problem(upload(api, dicom_bytes(name)), status, "file", rule)
    assert_still_serving(api)


def test_multiframe_frame_is_selectable(api: httpx.Client, model_store) -> None:
    data = dicom_bytes("examples_ybr_color.dcm")
    response = upload(api, data, model="derm-demo", frame="3")
    result = assert_matches_oracle(
        response, model_store, "derm-demo", EncodedImage(data, ImageFormat.DICOM, frame=3)
    )
    assert (result["frame"], result["frames"]) == (3, 30)
    assert_problem(upload(api, data, frame="30"), 422, "frame", "range")


@pytest.mark.parametrize(
    ("data", "fields", "status", "field", "rule"),
    [
        (b"just some text", {}, 415, "file", "format"),
        (b"", {}, 415, "file", "format"),
        (encode(pixels(30), "PNG")[:400], {}, 422, "file", "png"),
        (encode(pixels(31), "JPEG")[:300], {}, 422, "file", "jpeg"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, {}, 422, "file", "png"),
        (encode(pixels(32, 32, 32), "PNG"), {}, 422, "file", "range"),
        (encode(pixels(33, 64, 4096), "PNG"), {}, 422, "file", "range"),
        (encode(pixels(34, 64, 64), "PNG"), {"frame": "1"}, 422, "frame", "dicom-only"),
        (encode(pixels(35, 64, 64), "PNG"), {"frame": "-1"}, 422, "frame", "greater_than_equal"),
        (encode(pixels(36, 64, 64), "PNG"), {"model": "nope"}, 404, "model", "served"),
        (
            encode(pixels(37, 64, 64), "PNG"),
            {"model": "a b"},
            422,
            "model",
            "string_pattern_mismatch",
        ),
    ],
    ids=[
        "text",
        "empty",
        "truncated-png",
        "truncated-jpeg",
        "garbage-after-png-signature",
        "too-small",
        "too-wide",
        "frame-for-png",
        "negative-frame",
        "unknown-model",
        "bad-model-ref",
    ],
)
def test_hostile_uploads(api: httpx.Client, data, fields, status, field, rule) -> None:
    assert_problem(upload(api, data, **fields), status, field, rule)
    assert_still_serving(api)


def test_missing_file_field(api: httpx.Client) -> None:
    # A body that is not multipart at all is a 415 (tests/api/test_hostile_input.py).
    response = api.post("/infer/file", files={"model": (None, "derm-demo")})
    assert_problem(response, 422, "file", "missing")
    assert_still_serving(api)
