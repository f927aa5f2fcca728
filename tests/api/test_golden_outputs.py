"""The server's answer for each input format equals the golden output pinned in
``tests/data/golden/``, computed by a reference path independent of the server's
decoding and preprocessing (``tests/golden.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from serve_app.catalog.store import ModelStore
from tests.golden import GOLDEN_FILE, SAMPLES, Sample, sample_bytes

GOLDEN = json.loads(GOLDEN_FILE.read_text())
TOLERANCE = 1e-5
"""The reference and the server agree to ~3e-7 (float32 rounding); a changed filter,
scale or normalisation moves the outputs by far more."""


def answer(api: httpx.Client, sample: Sample) -> httpx.Response:
    data = sample_bytes(sample)
    if sample.file.endswith(".json"):
        return api.post("/infer", json=json.loads(data) | {"model": sample.model})
    return api.post("/infer/file", files={"file": ("upload", data)}, data={"model": sample.model})


def test_the_demo_models_are_the_ones_the_goldens_were_computed_with(model_store: Path) -> None:
    store = ModelStore(model_store)
    hashes = {name: store.resolve(name, "1.0.0").sha256 for name in GOLDEN["models"]}
    assert hashes == GOLDEN["models"], "demo models changed: regenerate with python -m tests.golden"


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_each_format_answers_its_golden_output(api: httpx.Client, sample: Sample) -> None:
    response = answer(api, sample)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["model_name"], result["model_version"]) == (sample.model, "1.0.0")
    np.testing.assert_allclose(
        result["outputs"], GOLDEN["outputs"][sample.id], atol=TOLERANCE, rtol=0
    )
