"""NVIDIA's own client, ``tritonclient[http]``, unchanged against the platform: over real
HTTP to the app in its own uvicorn process, and to the app served by Ray.

NOTE: each call gets a copy of the headers: tritonclient writes its own
(``Inference-Header-Content-Length``) into the dict it is given."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.api.test_body_streaming import uvicorn_app  # noqa: F401  (a server)
from tests.api.test_v2 import CHEST, GOLDEN, TOLERANCE, tensor_of
from tests.golden import SAMPLES, Sample
from tests.golden import sample_bytes as golden_bytes

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["uvicorn", pytest.param("served", marks=pytest.mark.serve)])
def client(request: pytest.FixtureRequest) -> triton.InferenceServerClient:
    if request.param == "uvicorn":
        base_url, _ = request.getfixturevalue("uvicorn_app")
    else:
        base_url = request.getfixturevalue("served")
    return triton.InferenceServerClient(url=base_url.removeprefix("http://"), network_timeout=120)


def sample(sample_id: str) -> Sample:
    (found,) = [s for s in SAMPLES if s.id == sample_id]
    return found


def test_readiness_and_metadata(
    client: triton.InferenceServerClient, clinician: dict[str, str]
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(CHEST, headers=dict(clinician))
    assert client.get_server_metadata(headers=dict(clinician))["name"] == "medai-flow"
    metadata = client.get_model_metadata(CHEST, headers=dict(clinician))
    assert metadata["inputs"][0]["datatype"] == "FP32"
    assert [o["name"] for o in metadata["outputs"]][1:] == [
        "prediction",
        "confidence",
        "inference_id",
    ]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_with_a_tensor(
    client: triton.InferenceServerClient, clinician: dict[str, str], binary: bool
) -> None:
    (model_input,) = client.get_model_metadata(CHEST, headers=dict(clinician))["inputs"]
    golden = sample("json-pixels")
    rows = np.concatenate([tensor_of(golden), np.zeros_like(tensor_of(golden))])
    tensor = triton.InferInput(model_input["name"], list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("probabilities", "prediction", "inference_id")
    ]

    result = client.infer(
        CHEST, [tensor], outputs=outputs, headers=dict(clinician), request_id="t-1"
    )

    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 2) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities[0], GOLDEN["outputs"][golden.id], atol=TOLERANCE)
    assert result.as_numpy("prediction").shape == (2,)
    ids = [i.decode() if isinstance(i, bytes) else i for i in result.as_numpy("inference_id")]
    assert len(set(ids)) == 2
    assert result.get_response()["id"] == "t-1"


def test_infer_with_an_encoded_image(
    client: triton.InferenceServerClient, clinician: dict[str, str]
) -> None:
    (model_input,) = client.get_model_metadata(CHEST, headers=dict(clinician))["inputs"]
    png = sample("png-grey8")
    files = np.array([golden_bytes(png)], dtype=np.object_)
    tensor = triton.InferInput(model_input["name"], [1], "BYTES")
    tensor.set_data_from_numpy(files)

    result = client.infer(CHEST, [tensor], headers=dict(clinician))  # every output, as JSON

    np.testing.assert_allclose(
        result.as_numpy("probabilities")[0], GOLDEN["outputs"][png.id], atol=TOLERANCE
    )


def test_refusals_reach_the_client_as_its_exception(
    client: triton.InferenceServerClient, clinician: dict[str, str]
) -> None:
    tensor = triton.InferInput("pixel_values", [1, 1, 8, 8], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(InferenceServerException, match="rows of shape") as refused:
        client.infer(CHEST, [tensor], headers=dict(clinician))
    assert refused.value.status() == "422"
    with pytest.raises(InferenceServerException, match="token") as unauthenticated:
        client.get_model_metadata(CHEST)
    assert unauthenticated.value.status() == "401"
