"""Shape decoded pixels into a model's input tensor, as its spec describes; or check that
a tensor a client sent already is one."""

from __future__ import annotations

import numpy as np
from PIL import Image

from serve_app.catalog.spec import Layout, ModelSpec
from serve_app.codecs.dtypes import VALUE_RANGES, unit_range
from serve_app.codecs.types import DecodedImage, TensorInput
from serve_app.errors import InvalidInput

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""ITU-R BT.601 weights, for RGB images sent to 1-channel models."""


def view(image: DecodedImage, spec: ModelSpec) -> np.ndarray:
    """What the model sees before normalisation: (height, width, channels) float32 in 0..1,
    at the model's size (bilinear; the aspect ratio is not kept) and channel count."""
    pixels = match_channels(unit_range(image.pixels), spec.channels)
    return resize(pixels, spec.height, spec.width)


def prepare(image: DecodedImage, spec: ModelSpec) -> np.ndarray:
    """Return a (1, ...) tensor in the model's layout and dtype: the ``view``, then
    ``(x - mean) / std``."""
    pixels = normalize(view(image, spec), spec.metadata.mean, spec.metadata.std)
    if spec.dtype.kind in "iu":  # integer-input models take pixels in their dtype's range
        low, high = VALUE_RANGES.get(spec.dtype, (0.0, float(np.iinfo(spec.dtype).max)))
        pixels = np.rint(np.clip(pixels, 0, 1) * (high - low) + low)
    if spec.layout is Layout.NCHW:
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels[np.newaxis], dtype=spec.dtype)


def fit(tensor: TensorInput, spec: ModelSpec) -> np.ndarray:
    """``tensor``'s array when it is exactly one of the model's inputs: its name, its
    dimensions after the batch axis, its type, and finite."""
    field = f"inputs.{tensor.name}"
    if tensor.name != spec.input_name:
        raise InvalidInput(
            f"model {spec.ref} takes input {spec.input_name!r}, not {tensor.name!r}",
            field=f"{field}.name",
            rule="model-input",
        )
    wanted = tuple(spec.input_shape[1:])
    if tensor.array.shape[1:] != wanted:
        raise InvalidInput(
            f"input {tensor.name}: model {spec.ref} takes rows of shape {list(wanted)},"
            f" not {list(tensor.array.shape[1:])}",
            field=f"{field}.shape",
            rule="model-input",
        )
    if tensor.array.dtype != spec.dtype:
        raise InvalidInput(
            f"input {tensor.name}: model {spec.ref} takes {spec.dtype.name},"
            f" not {tensor.array.dtype.name}",
            field=f"{field}.datatype",
            rule="model-input",
        )
    if spec.dtype.kind == "f" and not np.isfinite(tensor.array).all():
        raise InvalidInput(
            f"input {tensor.name}: values must be finite", field=f"{field}.data", rule="finite"
        )
    return tensor.array


def match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    have = pixels.shape[2]
    if have == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=2)
    return (pixels @ LUMA)[:, :, np.newaxis]


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    if pixels.shape[:2] == (height, width):
        return pixels
    planes = [
        np.asarray(
            Image.fromarray(pixels[:, :, c], mode="F").resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(pixels.shape[2])
    ]
    return np.stack(planes, axis=2)


def normalize(pixels: np.ndarray, mean: list[float] | None, std: list[float] | None) -> np.ndarray:
    if mean is not None:
        pixels = pixels - np.asarray(mean, dtype=np.float32)
    if std is not None:
        pixels = pixels / np.asarray(std, dtype=np.float32)
    return pixels
