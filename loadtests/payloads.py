"""Request bodies for load tests: deterministic images in each wire format."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
from PIL import Image

from serve_app.registry.spec import ModelSpec


def image_for(spec: ModelSpec, seed: int = 0) -> np.ndarray:
    """A uint8 image of the model's own size and channel count."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (spec.height, spec.width, spec.channels), dtype=np.uint8)


def json_body(image: np.ndarray, model: str) -> tuple[bytes, str]:
    h, w, c = image.shape
    body = {
        "data": image.ravel().tolist(),
        "width": w,
        "height": h,
        "channels": c,
        "dtype": "uint8",
        "model": model,
    }
    return json.dumps(body).encode(), "application/json"


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, "PNG")
    return buf.getvalue()


def multipart_body(image: np.ndarray, model: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="image.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + png_bytes(image)
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


BODIES = {"json": json_body, "file": multipart_body}
PATHS = {"json": "/infer", "file": "/infer/file"}


def batch_body(images: list[np.ndarray], model: str) -> tuple[bytes, str]:
    bodies = [json.loads(json_body(image, model)[0]) for image in images]
    return json.dumps({"images": bodies, "priority": "normal"}).encode(), "application/json"
