"""Expected outputs computed directly with ONNX Runtime, outside the serving path."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from serve_app.catalog.store import ModelStore
from serve_app.codecs.decode import decode
from serve_app.codecs.types import DecodedImage, EncodedImage, ImageFormat
from serve_app.demo_models import DEMO_MODELS
from serve_app.preprocessing import prepare
from serve_app.settings import LimitsSettings

DEMO_VERSIONS = {demo.name: demo.version for demo in DEMO_MODELS}
"""What a served demo model answers with, whatever other versions tests register."""


@cache
def _session(store_root: Path, model: str) -> tuple[ort.InferenceSession, object]:
    store = ModelStore(store_root)
    name, _, version = model.partition(":")
    spec = store.resolve(name, version or DEMO_VERSIONS.get(name))
    return ort.InferenceSession(store.read_verified(spec), providers=["CPUExecutionProvider"]), spec


def direct_outputs(store_root: Path, model: str, image: np.ndarray | EncodedImage) -> np.ndarray:
    """The model's output row for one image, via a fresh ONNX Runtime session."""
    session, spec = _session(store_root, model)
    decoded = (
        decode(image, LimitsSettings())
        if isinstance(image, EncodedImage)
        else DecodedImage(pixels=image, format=ImageFormat.PIXELS)
    )
    tensor = prepare(decoded, spec)
    (out,) = session.run([spec.output_name], {spec.input_name: tensor})
    return out[0]
