"""The Open Inference Protocol (KServe v2) routes, in process and served by Ray.

Answers are checked against the golden outputs (an independent decoding and
preprocessing path, ``tests/golden.py``): as encoded files in a ``BYTES`` tensor, and as
the reference tensor itself. Every answered row is stored and audited; every bad body is
a 4xx in the protocol's error body, and stores nothing.
"""

from __future__ import annotations

import json
import struct
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest

from serve_app.catalog.store import ModelStore
from tests.conftest import TokenFactory
from tests.golden import GOLDEN_DIR, INPUTS, SAMPLES, Sample, decode, reference_tensor
from tests.golden import sample_bytes as golden_bytes

GOLDEN = json.loads((GOLDEN_DIR / "outputs.json").read_text())
TOLERANCE = 1e-5
CHEST = "chest-xray-demo"
INPUT = "pixel_values"
HEADER = "Inference-Header-Content-Length"


def tensor_of(sample: Sample) -> np.ndarray:
    return reference_tensor(decode(sample), INPUTS[sample.model])


def fp32_input(array: np.ndarray, name: str = INPUT) -> dict[str, Any]:
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": "FP32",
        "data": array.ravel().tolist(),
    }


def binary_body(
    inputs: list[tuple[dict[str, Any], bytes]], **header: Any
) -> tuple[bytes, dict[str, str]]:
    """A binary-extension body: each input's JSON with its ``binary_data_size``, then its bytes."""
    described = [entry | {"parameters": {"binary_data_size": len(raw)}} for entry, raw in inputs]
    head = json.dumps({"inputs": described, **header}).encode()
    return head + b"".join(raw for _, raw in inputs), {HEADER: str(len(head))}


def length_prefixed(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def outputs_of(response: httpx.Response) -> dict[str, Any]:
    """Output name to its data: JSON ``data``, or the binary bytes decoded by datatype."""
    assert response.status_code == 200, response.text
    length = response.headers.get(HEADER)
    head = json.loads(response.content[: int(length)] if length else response.content)
    raw = response.content[int(length) :] if length else b""
    found, at = {}, 0
    for output in head["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            found[output["name"]] = output["data"]
            continue
        chunk = raw[at : at + size]
        at += size
        if output["datatype"] == "BYTES":
            values, i = [], 0
            while i < len(chunk):
                (n,) = struct.unpack_from("<I", chunk, i)
                values.append(chunk[i + 4 : i + 4 + n].decode())
                i += 4 + n
            found[output["name"]] = values
        else:
            dtype = {"FP32": np.float32, "FP64": np.float64}[output["datatype"]]
            found[output["name"]] = np.frombuffer(chunk, dtype).tolist()
    assert at == len(raw)
    return found


def v2_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    return body["error"]


# --- health and metadata ----------------------------------------------------------------


def test_health_needs_no_token(api: httpx.Client) -> None:
    for path in ("/v2/health/live", "/v2/health/ready"):
        response = api.get(path, headers={"Authorization": ""})
        assert response.status_code == 200, response.text


def test_metadata_needs_a_token_and_answers_in_the_protocols_body(api: httpx.Client) -> None:
    assert "token" in v2_error(api.get("/v2", headers={"Authorization": ""}), 401)
    server = api.get("/v2").json()
    assert server["name"] == "medai-flow" and "binary_tensor_data" in server["extensions"]


def test_model_metadata_is_the_onnx_graphs(api: httpx.Client, model_store: Path) -> None:
    spec = ModelStore(model_store).starting(CHEST, None)
    graph = onnx.load_from_string(ModelStore(model_store).read_verified(spec)).graph
    (graph_input,) = graph.input
    dims = [d.dim_value or -1 for d in graph_input.type.tensor_type.shape.dim]

    metadata = api.get(f"/v2/models/{CHEST}").json()

    assert metadata["name"] == CHEST and metadata["versions"] == [spec.version]
    assert metadata["inputs"] == [{"name": graph_input.name, "datatype": "FP32", "shape": dims}]
    names = [o["name"] for o in metadata["outputs"]]
    assert names == [graph.output[0].name, "prediction", "confidence", "inference_id"]
    pinned = api.get(f"/v2/models/{CHEST}/versions/{spec.version}").json()
    assert pinned["inputs"] == metadata["inputs"]
    assert api.get(f"/v2/models/{CHEST}/ready").status_code == 200
    assert api.get(f"/v2/models/{CHEST}/versions/{spec.version}/ready").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/no-such-model",
        "/v2/models/no-such-model/ready",
        f"/v2/models/{CHEST}/versions/9.9.9",
        f"/v2/models/{CHEST}/versions/9.9.9/ready",
    ],
)
def test_an_unknown_model_or_version_is_a_404(api: httpx.Client, path: str) -> None:
    assert "not served" in v2_error(api.get(path), 404)


# --- inference --------------------------------------------------------------------------

IMAGE_SAMPLES = [s for s in SAMPLES if not s.file.endswith(".json")]


@pytest.mark.parametrize("sample", IMAGE_SAMPLES, ids=[s.id for s in IMAGE_SAMPLES])
def test_an_encoded_image_answers_its_golden_output(api: httpx.Client, sample: Sample) -> None:
    (model_input,) = api.get(f"/v2/models/{sample.model}").json()["inputs"]
    entry = {"name": model_input["name"], "shape": [1], "datatype": "BYTES"}
    raw, headers = binary_body([(entry, length_prefixed(golden_bytes(sample)))])
    response = api.post(f"/v2/models/{sample.model}/infer", content=raw, headers=headers)
    outputs = outputs_of(response)
    (row,) = np.reshape(outputs[next(iter(outputs))], (1, -1))
    np.testing.assert_allclose(row, GOLDEN["outputs"][sample.id], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_a_tensor_answers_as_the_same_pixels_do_through_infer(
    api: httpx.Client, binary: bool
) -> None:
    """The reference tensor of the pixels /infer gets as a JSON list: the same answer."""
    (sample,) = [s for s in SAMPLES if s.id == "json-pixels"]
    pixels_body = json.loads((GOLDEN_DIR / sample.file).read_text())
    through_infer = api.post("/infer", json=pixels_body)
    assert through_infer.status_code == 200, through_infer.text
    tensor = tensor_of(sample)
    if binary:
        entry = {"name": INPUT, "shape": list(tensor.shape), "datatype": "FP32"}
        raw, headers = binary_body(
            [(entry, tensor.tobytes())], parameters={"binary_data_output": True}
        )
        response = api.post(f"/v2/models/{CHEST}/infer", content=raw, headers=headers)
        assert response.headers["content-type"] == "application/octet-stream"
    else:
        response = api.post(f"/v2/models/{CHEST}/infer", json={"inputs": [fp32_input(tensor)]})
        assert response.headers["content-type"] == "application/json"
    outputs = outputs_of(response)
    np.testing.assert_allclose(
        outputs["probabilities"], through_infer.json()["outputs"], atol=TOLERANCE, rtol=0
    )
    np.testing.assert_allclose(
        outputs["probabilities"], GOLDEN["outputs"][sample.id], atol=TOLERANCE, rtol=0
    )
    assert outputs["prediction"] == [through_infer.json()["prediction"]]


def test_each_row_of_a_batch_gets_its_own_answer_stored_and_audited(api: httpx.Client) -> None:
    rows = np.random.default_rng(7).normal(0, 1, (5, 1, 256, 256)).astype(np.float32)
    request_id = uuid.uuid4().hex
    response = api.post(
        f"/v2/models/{CHEST}/infer",
        json={"id": request_id, "inputs": [fp32_input(rows)], "parameters": {"patient_id": "p-7"}},
    )
    assert response.json()["id"] == request_id
    batch = outputs_of(response)
    assert len(batch["inference_id"]) == len(set(batch["inference_id"])) == 5
    probabilities = np.reshape(batch["probabilities"], (5, -1))
    for i, row in enumerate(rows):
        alone = outputs_of(
            api.post(f"/v2/models/{CHEST}/infer", json={"inputs": [fp32_input(row[None])]})
        )
        np.testing.assert_allclose(probabilities[i], alone["probabilities"], atol=TOLERANCE)
        stored = api.get(f"/results/{batch['inference_id'][i]}")
        assert stored.status_code == 200, stored.text
        np.testing.assert_allclose(stored.json()["outputs"], probabilities[i], atol=TOLERANCE)
        assert stored.json()["prediction"] == batch["prediction"][i]
        assert stored.json()["patient_ref"] not in (None, "p-7")  # pseudonymized


def test_requested_outputs_only_and_each_as_asked(api: httpx.Client) -> None:
    tensor = np.zeros((2, 1, 256, 256), np.float32)
    body = {
        "inputs": [fp32_input(tensor)],
        "outputs": [
            {"name": "prediction", "parameters": {"binary_data": True}},
            {"name": "probabilities"},
        ],
    }
    response = api.post(f"/v2/models/{CHEST}/infer", json=body)
    head = json.loads(response.content[: int(response.headers[HEADER])])
    assert [o["name"] for o in head["outputs"]] == ["prediction", "probabilities"]
    assert "data" in head["outputs"][1] and "data" not in head["outputs"][0]
    outputs = outputs_of(response)
    assert len(outputs["prediction"]) == 2 and len(outputs["probabilities"]) == 4


def test_a_pinned_version_answers_with_it(api: httpx.Client, model_store: Path) -> None:
    version = ModelStore(model_store).starting(CHEST, None).version
    body = {"inputs": [fp32_input(np.zeros((1, 1, 256, 256), np.float32))]}
    response = api.post(f"/v2/models/{CHEST}/versions/{version}/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == version


# --- hostile input ----------------------------------------------------------------------

ROW = {"name": INPUT, "shape": [1, 1, 256, 256], "datatype": "FP32"}
ZEROS = [0.0] * 256 * 256
HOSTILE_JSON: list[tuple[str, Any, int, str]] = [
    ("not-json", b"{", 400, "JSON"),
    ("array", b"[]", 400, "JSON"),
    ("no-inputs", {"inputs": []}, 422, "inputs"),
    ("unknown-field", {"inputs": [ROW | {"data": ZEROS}], "extra": 1}, 422, "extra"),
    ("bad-datatype", {"inputs": [ROW | {"datatype": "FP8", "data": ZEROS}]}, 422, "datatype"),
    ("negative-dim", {"inputs": [ROW | {"shape": [1, -1], "data": []}]}, 422, "shape"),
    ("too-many-dims", {"inputs": [ROW | {"shape": [1] * 9, "data": [0.0]}]}, 422, "shape"),
    ("count-mismatch", {"inputs": [ROW | {"data": [0.0] * 10}]}, 422, "elements"),
    ("strings-for-fp32", {"inputs": [ROW | {"data": ["1"] * 65536}]}, 422, "FP32"),
    ("bools-for-fp32", {"inputs": [ROW | {"data": [True] * 65536}]}, 422, "FP32"),
    ("no-data", {"inputs": [ROW]}, 422, "neither"),
    ("huge-shape", {"inputs": [ROW | {"shape": [2**40, 2**40], "data": []}]}, 413, "limit"),
    (
        "two-inputs",
        {"inputs": [ROW | {"data": ZEROS}, ROW | {"name": "b", "data": ZEROS}]},
        422,
        "one input",
    ),
    ("same-name-twice", {"inputs": [ROW | {"data": ZEROS}, ROW | {"data": ZEROS}]}, 422, "twice"),
    ("wrong-input-name", {"inputs": [ROW | {"name": "x", "data": ZEROS}]}, 422, "takes input"),
    (
        "wrong-row-shape",
        {"inputs": [ROW | {"shape": [1, 1, 16, 16], "data": [0.0] * 256}]},
        422,
        "rows of shape",
    ),
    ("wrong-type", {"inputs": [ROW | {"datatype": "FP64", "data": ZEROS}]}, 422, "float32"),
    ("overflowing-fp32", {"inputs": [ROW | {"data": [1e39] * 65536}]}, 422, "FP32"),
    ("zero-rows", {"inputs": [ROW | {"shape": [0, 1, 256, 256], "data": []}]}, 422, "rows"),
    (
        "unknown-output",
        {"inputs": [ROW | {"data": ZEROS}], "outputs": [{"name": "x"}]},
        404,
        "no output",
    ),
    (
        "not-an-image",
        {"inputs": [{"name": INPUT, "shape": [1], "datatype": "BYTES", "data": ["hello"]}]},
        415,
        "",
    ),
    (
        "deep-nesting",
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}]}",
        400,
        "",
    ),
]


def head_seq(api: httpx.Client, auditor: dict[str, str], at_least: int = 0) -> int:
    """The trail's newest seq, found by galloping then halving from ``at_least``."""

    def beyond(seq: int) -> bool:
        page = api.get("/audit", params={"after_seq": seq, "limit": 1}, headers=auditor)
        return bool(page.json()["entries"])

    low, step = at_least, 1
    while beyond(low + step - 1):
        low, step = low + step, step * 2
    high = low + step - 1  # nothing after it; something after low - 1
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if beyond(middle) else (low, middle)
    return low


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [case[1:] for case in HOSTILE_JSON],
    ids=[case[0] for case in HOSTILE_JSON],
)
def test_a_hostile_json_body_is_a_4xx_and_stores_nothing(
    api: httpx.Client, token_for: TokenFactory, body: Any, status: int, says: str
) -> None:
    auditor = {"Authorization": f"Bearer {token_for('auditor')}"}
    before = head_seq(api, auditor)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = api.post(
        f"/v2/models/{CHEST}/infer",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert says.lower() in v2_error(response, status).lower()
    ok = api.post(f"/v2/models/{CHEST}/infer", json={"inputs": [ROW | {"data": ZEROS}]})
    (answered,) = outputs_of(ok)["inference_id"]  # the server keeps serving
    since = api.get("/audit", params={"after_seq": before, "limit": 1000}, headers=auditor)
    inferences = [e["object_id"] for e in since.json()["entries"] if e["action"] == "inference"]
    assert inferences == [answered]


def header_of(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def hostile_binary() -> list[tuple[str, bytes, dict[str, str], int, str]]:
    one = np.zeros((1, 1, 256, 256), np.float32).tobytes()
    good = header_of({"inputs": [ROW | {"parameters": {"binary_data_size": len(one)}}]})
    byte_row = {"name": INPUT, "shape": [1], "datatype": "BYTES"}
    cut = header_of({"inputs": [byte_row | {"parameters": {"binary_data_size": 6}}]})
    sized = ROW | {"data": ZEROS, "parameters": {"binary_data_size": len(one)}}
    both = header_of({"inputs": [sized]})
    return [
        ("header-length-not-a-number", good + one, {HEADER: "abc"}, 400, "Header-Content-Length"),
        (
            "header-length-past-the-body",
            good + one,
            {HEADER: str(len(good + one) + 1)},
            400,
            "Header-Content-Length",
        ),
        ("header-length-zero", good + one, {HEADER: "0"}, 400, "Header-Content-Length"),
        ("size-past-the-end", good + one[:-4], {HEADER: str(len(good))}, 422, "runs past"),
        ("leftover-bytes", good + one + b"xx", {HEADER: str(len(good))}, 422, "belong to no"),
        (
            "size-and-data",
            both + one,
            {HEADER: str(len(both))},
            422,
            "binary_data_size",
        ),
        (
            "bytes-prefix-cut",
            cut + b"\x05\x00\x00\x00ab",
            {HEADER: str(len(cut))},
            422,
            "longer than",
        ),
        (
            "nan-in-binary",
            good + np.full((1, 1, 256, 256), np.nan, np.float32).tobytes(),
            {HEADER: str(len(good))},
            422,
            "finite",
        ),
    ]


@pytest.mark.parametrize(
    ("content", "headers", "status", "says"),
    [case[1:] for case in hostile_binary()],
    ids=[case[0] for case in hostile_binary()],
)
def test_a_hostile_binary_body_is_a_4xx(
    api: httpx.Client, content: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    response = api.post(f"/v2/models/{CHEST}/infer", content=content, headers=headers)
    assert says.lower() in v2_error(response, status).lower()


def test_too_many_rows_are_refused_before_running(api: httpx.Client) -> None:
    rows = 101  # limits.max_batch_images is 100
    body = {"inputs": [{"name": INPUT, "shape": [rows], "datatype": "BYTES", "data": ["x"] * rows}]}
    assert "rows" in v2_error(api.post(f"/v2/models/{CHEST}/infer", json=body), 422)


def test_wrong_method_and_unknown_path_answer_in_the_protocols_body(api: httpx.Client) -> None:
    assert v2_error(api.get(f"/v2/models/{CHEST}/infer"), 405)
    assert v2_error(api.get("/v2/no/such/thing"), 404)


def test_the_benchmarks_v2_body_is_answered(api: httpx.Client) -> None:
    """``loadtests/bench.py --endpoint v2`` measures a request the server answers."""
    from loadtests.payloads import v2_body

    body, headers = v2_body(np.zeros((1, 1, 256, 256), np.float32), INPUT)
    response = api.post(f"/v2/models/{CHEST}/infer", content=body, headers=headers)
    assert len(outputs_of(response)["inference_id"]) == 1
