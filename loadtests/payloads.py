"""Request bodies for load tests: deterministic images in each wire format."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from serve_app.catalog.spec import ModelSpec
from serve_app.codecs.tensors import datatype_of


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


def dicom_bytes(image: np.ndarray) -> bytes:
    """The image as an uncompressed secondary-capture DICOM file (MONOCHROME2 or RGB)."""
    h, w, c = image.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.Modality = "OT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = h, w, c
    ds.PhotometricInterpretation = "MONOCHROME2" if c == 1 else "RGB"
    if c == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = image.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _multipart(model: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def multipart_body(image: np.ndarray, model: str) -> tuple[bytes, str]:
    return _multipart(model, "image.png", "image/png", png_bytes(image))


def dicom_body(image: np.ndarray, model: str) -> tuple[bytes, str]:
    return _multipart(model, "image.dcm", "application/dicom", dicom_bytes(image))


def v2_body(tensor: np.ndarray, input_name: str) -> tuple[bytes, dict[str, str]]:
    """A v2 (KServe, Triton) inference body with the binary-data extension: the JSON
    header, the tensor's raw bytes, and the headers that say where the header ends."""
    datatype = datatype_of(tensor.dtype)
    size = {"binary_data_size": tensor.nbytes}
    entry = {"name": input_name, "shape": list(tensor.shape), "datatype": datatype}
    header = json.dumps({"inputs": [entry | {"parameters": size}]}).encode()
    return header + tensor.tobytes(), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }


BODIES = {"json": json_body, "file": multipart_body, "dicom": dicom_body}
PATHS = {
    "json": "/infer",
    "file": "/infer/file",
    "dicom": "/infer/file",
    "v2": "/v2/models/{model}/infer",
}
"""Where each endpoint's body goes; ``v2`` sends the model's own tensor (``v2_body``)."""


def batch_body(images: list[np.ndarray], model: str) -> tuple[bytes, str]:
    bodies = [json.loads(json_body(image, model)[0]) for image in images]
    return json.dumps({"images": bodies, "priority": "normal"}).encode(), "application/json"
