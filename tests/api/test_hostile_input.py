"""The hostile-input matrix: each attack is a 4xx problem naming its field and rule,
and the next valid request is served.

Covered elsewhere and not repeated here: every per-field rule (``RULES`` and the
NaN/Infinity and malformed-body tests in test_infer_json.py), text, empty, truncated
and out-of-range uploads (``test_hostile_uploads``) and unusable pydicom samples,
truncated ones among them (``DICOM_REJECTED``, test_infer_file.py), batch structure
(test_infer_batch.py), DICOM bombs in depth (tests/unit/test_dicom_guards.py) and
bodies over the size limit (tests/serve/test_body_streaming.py).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.test_infer_file import upload
from tests.images import encode, pixels
from tests.problems import assert_problem, assert_still_serving
from tests.unit.test_dicom_codec import dataset, sample, to_bytes
from tests.unit.test_dicom_guards import deflated_with_padding, jpeg_declaring, with_frame
from tests.unit.test_images import png_declaring

Send = Callable[[httpx.Client], httpx.Response]
PIXELS = b"[" + b"0, " * 4095 + b"0]"
BOUNDARY = "medai-hostile"


def raw(path: str, body: bytes, content_type: str | None = "application/json") -> Send:
    headers = {"content-type": content_type} if content_type else {}
    return lambda api: api.post(path, content=body, headers=headers)


def infer_json(first: bytes = b"", **members: bytes) -> Send:
    """A valid 64x64 /infer body as raw JSON, with ``members`` replaced and ``first`` first."""
    fields = {"width": b"64", "height": b"64", "dtype": b'"uint8"', "data": PIXELS, **members}
    text = b", ".join(b'"%s": %s' % (name.encode(), value) for name, value in fields.items())
    return raw("/infer", b"{" + first + text + b"}")


def as_type(content_type: str | None) -> Send:
    """A valid /infer body sent as ``content_type``."""
    body = b'{"width": 64, "height": 64, "dtype": "uint8", "data": ' + PIXELS + b"}"
    return raw("/infer", body, content_type)


def multipart(body: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}") -> Send:
    return raw("/infer/file", body, content_type)


def part(headers: str, content: bytes) -> bytes:
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"


def dicom_without_pixel_data() -> bytes:
    ds = dataset("CT_small.dcm")
    del ds.PixelData
    return to_bytes(ds)


def declared(fmt: str, part_type: str) -> Send:
    data = {
        "PNG": lambda: encode(pixels(50, 64, 64), "PNG"),
        "JPEG": lambda: encode(pixels(51, 64, 64), "JPEG"),
        "DICOM": lambda: sample("CT_small.dcm"),
    }[fmt]
    return lambda api: upload(api, data(), content_type=part_type)


ATTACKS = [
    # --- JSON that cannot be parsed at all
    pytest.param(
        raw("/infer", b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        400,
        "body",
        "json-depth",
        id="deep-array",
    ),
    pytest.param(
        raw("/infer", b'{"a": ' * 100_000 + b"1" + b"}" * 100_000),
        400,
        "body",
        "json-depth",
        id="deep-object",
    ),
    pytest.param(infer_json(width=b"9" * 5000), 400, "body", "parse", id="5000-digits"),
    pytest.param(infer_json(patient_id=b'"\xff\xfe"'), 400, "body", "parse", id="not-utf8"),
    # --- JSON values of the wrong kind
    pytest.param(infer_json(width=b"1e400"), 422, "width", "int_type", id="width-1e400"),
    pytest.param(
        infer_json(data=b"[1e400" + b", 0" * 4095 + b"]"), 422, "data", "finite", id="pixel-1e400"
    ),
    pytest.param(infer_json(width=b"null"), 422, "width", "int_type", id="width-null"),
    pytest.param(infer_json(height=b'{"px": 64}'), 422, "height", "int_type", id="height-object"),
    pytest.param(infer_json(width=b"[64]"), 422, "width", "int_type", id="width-list"),
    pytest.param(infer_json(data=b"null"), 422, "data", "list_type", id="data-null"),
    pytest.param(infer_json(data=b'{"0": 1}'), 422, "data", "list_type", id="data-object"),
    pytest.param(
        infer_json(data=b"[null" + b", 0" * 4095 + b"]"),
        422,
        "data.0",
        "float_type",
        id="pixel-null",
    ),
    pytest.param(
        infer_json(data=b"[0" + b", 0" * 4094 + b", {}]"),
        422,
        "data.4095",
        "float_type",
        id="last-pixel-object",
    ),
    pytest.param(
        raw("/infer", b'{"data": [' + b'"a", ' * 1_000_000 + b'"a"]}'),
        422,
        "data.0",
        "float_parsing",
        id="million-bad-pixels",
    ),
    pytest.param(
        infer_json(b", ".join(b'"k%d": 0' % i for i in range(200_000)) + b", "),
        422,
        "k0",
        "extra_forbidden",
        id="200k-unknown-fields",
    ),
    pytest.param(
        raw("/infer/batch", b'{"images": [null]}'),
        422,
        "images.0",
        "model_attributes_type",
        id="batch-image-null",
    ),
    pytest.param(
        raw(
            "/infer/batch",
            b'{"images": ['
            + b", ".join([b'{"width": 64, "height": 64, "data": [0]}'] * 5000)
            + b"]}",
        ),
        422,
        "images",
        "max-items",
        id="batch-of-5000",
    ),
    # --- a body in a media type the route does not read
    pytest.param(as_type("text/plain"), 415, "content-type", "media-type", id="json-as-text"),
    pytest.param(
        as_type("application/x-www-form-urlencoded"),
        415,
        "content-type",
        "media-type",
        id="json-as-form",
    ),
    pytest.param(as_type(None), 415, "content-type", "media-type", id="json-untyped"),
    pytest.param(
        raw("/infer/batch", b'{"images": []}', "application/xml"),
        415,
        "content-type",
        "media-type",
        id="batch-as-xml",
    ),
    pytest.param(
        raw("/infer/file", b'{"file": "x"}'),
        415,
        "content-type",
        "media-type",
        id="upload-as-json",
    ),
    pytest.param(
        lambda api: api.post("/infer/file", data={"model": "derm-demo"}),
        415,
        "content-type",
        "media-type",
        id="upload-as-form",
    ),
    # --- multipart that cannot be parsed
    pytest.param(
        multipart(
            part('Content-Disposition: form-data; name="file"; filename="a"', b"x"),
            "multipart/form-data",
        ),
        400,
        "body",
        "multipart",
        id="multipart-without-boundary",
    ),
    pytest.param(multipart(b"no parts at all"), 400, "body", "multipart", id="multipart-garbage"),
    pytest.param(
        multipart(
            part('Content-Disposition: form-data; filename="a"', b"x")
            + f"--{BOUNDARY}--\r\n".encode()
        ),
        400,
        "body",
        "multipart",
        id="part-without-name",
    ),
    pytest.param(
        lambda api: api.post(
            "/infer/file", files={"file": ("a", b"x")}, data={"model": "m" * (2 << 20)}
        ),
        400,
        "body",
        "multipart",
        id="2mb-form-field",
    ),
    pytest.param(
        lambda api: api.post("/infer/file", files=[("file", ("a", b"x"))] * 1001),
        400,
        "body",
        "multipart",
        id="1001-files",
    ),
    # --- files whose headers lie
    pytest.param(
        lambda api: upload(api, png_declaring(100_000, 100_000)),
        422,
        "file",
        "range",
        id="png-bomb",
    ),
    pytest.param(
        lambda api: upload(
            api, with_frame("SC_rgb_jpeg_dcmtk.dcm", jpeg_declaring(65_000, 65_000))
        ),
        422,
        "file",
        "range",
        id="dicom-jpeg-frame-bomb",
    ),
    pytest.param(
        lambda api: upload(api, deflated_with_padding(64 << 20)),
        422,
        "file",
        "dicom",
        id="dicom-deflate-bomb",
    ),
    pytest.param(
        lambda api: upload(api, dicom_without_pixel_data()),
        422,
        "file",
        "dicom-pixel-data",
        id="dicom-without-pixel-data",
    ),
    pytest.param(
        lambda api: upload(api, b"GIF89a" + b"\x00" * 300, content_type="image/png"),
        415,
        "file",
        "format",
        id="gif-declared-png",
    ),
    pytest.param(
        lambda api: upload(api, b"just text", name="scan.dcm", content_type="application/dicom"),
        415,
        "file",
        "format",
        id="text-declared-dicom",
    ),
]


@pytest.mark.parametrize(("send", "status", "field", "rule"), ATTACKS)
def test_attack_is_a_problem_and_serving_continues(
    api: httpx.Client, send: Send, status: int, field: str, rule: str
) -> None:
    assert_problem(send(api), status, field, rule)
    assert_still_serving(api)


@pytest.mark.parametrize(
    ("fmt", "part_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("DICOM", "application/dicom")],
)
def test_a_declared_type_that_agrees_is_served(api: httpx.Client, fmt: str, part_type: str) -> None:
    response = declared(fmt, part_type)(api)
    assert response.status_code == 200, response.text
