"""Golden outputs per input format, from a reference path that shares nothing with the
server's codecs and preprocessing.

Each sample is decoded here with Pillow or pydicom directly, scaled to 0..1, resized with
a triangle (bilinear) filter and normalised in numpy, written below from their
definitions, and run through the demo model with ONNX Runtime. The outputs, with the
sample files and the demo models' SHA-256, are pinned in ``tests/data/golden/``; the test
(``tests/api/test_golden_outputs.py``) compares the server's answers with them, so a
change to decoding or preprocessing fails it even where the server's own oracle
(``tests/oracle.py``) would move with the change.

Regenerate only when such a change is intended, and say why in the commit::

    PYTHONPATH=$PWD python -m tests.golden
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from serve_app.demo_models import DEMO_MODELS

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
GOLDEN_FILE = GOLDEN_DIR / "outputs.json"


@dataclass(frozen=True)
class Input:
    """A demo model's input as its model card states it (not read from the server)."""

    height: int
    width: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


INPUTS = {
    "chest-xray-demo": Input(256, 256, 1, (0.5,), (0.25,)),
    "derm-demo": Input(224, 224, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


@dataclass(frozen=True)
class Sample:
    id: str
    model: str
    file: str
    """Under ``GOLDEN_DIR``, or a pydicom test file's name (``dicom:``)."""


SAMPLES = [
    Sample("png-grey8", "chest-xray-demo", "grey8.png"),
    Sample("png-grey16", "chest-xray-demo", "grey16.png"),
    Sample("png-rgb", "derm-demo", "rgb.png"),
    Sample("png-rgb-to-grey-model", "chest-xray-demo", "rgb.png"),
    Sample("png-grey8-to-rgb-model", "derm-demo", "grey8.png"),
    Sample("jpeg-grey", "chest-xray-demo", "grey.jpg"),
    Sample("dicom-ct", "chest-xray-demo", "dicom:CT_small.dcm"),
    Sample("dicom-mr", "chest-xray-demo", "dicom:MR_small.dcm"),
    Sample("json-pixels", "chest-xray-demo", "pixels.json"),
]


def sample_bytes(sample: Sample) -> bytes:
    if sample.file.startswith("dicom:"):
        path = get_testdata_file(sample.file.removeprefix("dicom:"), download=False)
        assert path is not None, f"{sample.file} is not shipped with this pydicom"
        return Path(path).read_bytes()
    return (GOLDEN_DIR / sample.file).read_bytes()


# --- reference decoding: each format's own library, scaled to 0..1 by its bit depth ---


def decode_picture(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(image, dtype=np.float64)[:, :, None] / 65535
    image = image.convert("L" if image.mode in ("L", "1", "LA") else "RGB")
    array = np.asarray(image, dtype=np.float64) / 255
    return array[:, :, None] if array.ndim == 2 else array


def decode_dicom(data: bytes) -> np.ndarray:
    """MONOCHROME2 only: rescale, then the linear window of DICOM PS3.3 C.11.2.1.2.1 if the
    file has one, else the image's own min..max, to 0..1."""
    ds = dcmread(io.BytesIO(data))
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    values = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(
        ds.get("RescaleIntercept", 0)
    )
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = float(ds.WindowCenter), float(ds.WindowWidth)
        unit = (values - (center - 0.5)) / (width - 1) + 0.5
    else:
        unit = (values - values.min()) / (values.max() - values.min())
    return np.clip(unit, 0, 1)[:, :, None]


def decode_pixel_list(body: dict[str, Any]) -> np.ndarray:
    scale = {"uint8": 255, "uint16": 65535}[body["dtype"]]
    shape = (body["height"], body["width"], body["channels"])
    return np.asarray(body["data"], dtype=np.float64).reshape(shape) / scale


def decode(sample: Sample) -> np.ndarray:
    data = sample_bytes(sample)
    if sample.file.startswith("dicom:"):
        return decode_dicom(data)
    if sample.file.endswith(".json"):
        return decode_pixel_list(json.loads(data))
    return decode_picture(data)


# --- reference preprocessing --------------------------------------------------------


def triangle_weights(source: int, target: int) -> np.ndarray:
    """(target, source) weights of a bilinear resize: a triangle filter on pixel centres,
    widened by the scale when shrinking so that every source pixel counts (antialiasing)."""
    scale = source / target
    support = max(scale, 1.0)
    centres = (np.arange(target) + 0.5) * scale
    distance = (np.arange(source)[None, :] + 0.5 - centres[:, None]) / support
    weights = np.clip(1 - np.abs(distance), 0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def reference_tensor(pixels: np.ndarray, spec: Input) -> np.ndarray:
    """(1, C, H, W) float32: channels matched (BT.601 luma, or grey repeated), resized,
    then ``(x - mean) / std``."""
    if pixels.shape[2] == 3 and spec.channels == 1:
        pixels = (pixels @ np.array([0.299, 0.587, 0.114]))[:, :, None]
    elif pixels.shape[2] == 1 and spec.channels == 3:
        pixels = np.repeat(pixels, 3, axis=2)
    rows = triangle_weights(pixels.shape[0], spec.height)
    columns = triangle_weights(pixels.shape[1], spec.width)
    resized = np.einsum("hy,yxc,wx->hwc", rows, pixels, columns)
    normalised = (resized - np.asarray(spec.mean)) / np.asarray(spec.std)
    return normalised.transpose(2, 0, 1)[None].astype(np.float32)


def demo_model_bytes() -> dict[str, bytes]:
    return {demo.name: demo.build() for demo in DEMO_MODELS if demo.name in INPUTS}


def reference_outputs(models: dict[str, bytes]) -> dict[str, list[float]]:
    sessions = {
        name: ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        for name, data in models.items()
    }
    outputs = {}
    for sample in SAMPLES:
        session = sessions[sample.model]
        tensor = reference_tensor(decode(sample), INPUTS[sample.model])
        (row,) = session.run(None, {session.get_inputs()[0].name: tensor})[0]
        outputs[sample.id] = [float(v) for v in row]
    return outputs


# --- the sample files ------------------------------------------------------------------


def _pattern(height: int, width: int, phase: float) -> np.ndarray:
    """Smooth rings and stripes in 0..1: structure for the resize to act on, small files."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rings = np.sin(np.hypot(y - height / 3, x - width / 2) / 6 + phase)
    stripes = np.cos(x / 9 - y / 13 + phase)
    return (rings + stripes) / 4 + 0.5


def write_sample_files() -> None:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    grey8 = np.rint(_pattern(300, 340, 0.0) * 255).astype(np.uint8)  # shrunk to 256
    Image.fromarray(grey8).save(GOLDEN_DIR / "grey8.png")
    grey16 = np.rint(_pattern(90, 120, 1.0) * 65535).astype(np.uint16)  # enlarged
    Image.fromarray(grey16).save(GOLDEN_DIR / "grey16.png")
    rgb = np.stack([_pattern(180, 300, p) for p in (0.0, 2.0, 4.0)], axis=2)
    Image.fromarray(np.rint(rgb * 255).astype(np.uint8)).save(GOLDEN_DIR / "rgb.png")
    jpeg = np.rint(_pattern(256, 256, 3.0) * 255).astype(np.uint8)  # the model's size
    Image.fromarray(jpeg).save(GOLDEN_DIR / "grey.jpg", "JPEG", quality=90)
    listed = np.rint(_pattern(64, 80, 5.0) * 255).astype(np.uint8)
    body = {"data": listed.ravel().tolist(), "width": 80, "height": 64, "channels": 1}
    (GOLDEN_DIR / "pixels.json").write_text(json.dumps(body | {"dtype": "uint8"}))


def main() -> None:
    write_sample_files()
    models = demo_model_bytes()
    golden = {
        "models": {name: hashlib.sha256(data).hexdigest() for name, data in models.items()},
        "outputs": reference_outputs(models),
    }
    GOLDEN_FILE.write_text(json.dumps(golden, indent=2) + "\n")
    print(f"wrote {GOLDEN_FILE} ({len(SAMPLES)} samples)")


if __name__ == "__main__":
    main()
