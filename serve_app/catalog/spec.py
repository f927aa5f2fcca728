"""What a model expects and means, read from the ONNX file itself.

Input name, shape, layout and dtype come from the graph; labels, threshold
and normalisation from ``metadata_props`` keys prefixed ``medai.``. Nothing
else in the platform hard-codes an input name or size.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serve_app.codecs.dtypes import ONNX_TENSOR_TYPES
from serve_app.errors import InvalidInput

METADATA_PREFIX = "medai."
STRING_METADATA = {"description", "clinical_domain"}
"""Free text: never JSON-decoded, so "42" or "null" stay what they say."""


class Layout(StrEnum):
    NCHW = "NCHW"
    NHWC = "NHWC"


class ModelMetadata(BaseModel):
    """The ``medai.*`` metadata_props of a model file; every key optional."""

    model_config = ConfigDict(extra="ignore")

    labels: list[str] = Field(default_factory=lambda: ["negative", "positive"], min_length=2)
    """Class names, one per output; at least two (a single-output model cannot say no)."""
    positive_index: int | None = None
    threshold: float = Field(0.85, ge=0.0, le=1.0)
    mean: list[float] | None = None
    std: list[float] | None = None
    output_kind: Literal["probabilities", "logits"] = "probabilities"
    layout: Layout | None = None
    clinical_domain: str | None = None
    description: str | None = None


class ModelSpec(BaseModel):
    """A registered model version: identity, tensor contract, and meaning."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    sha256: str
    size_bytes: int
    input_name: str
    input_shape: list[int | None]
    input_dtype: str
    layout: Layout
    output_name: str
    output_shape: list[int | None]
    metadata: ModelMetadata
    output_dtype: str | None = None
    """The output's numpy type name; ``None`` in catalog entries made before it was kept
    (their outputs are answered as float32)."""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def dynamic_batch(self) -> bool:
        return self.input_shape[0] is None

    @property
    def channels(self) -> int:
        return self._fixed_dim(1 if self.layout is Layout.NCHW else 3)

    @property
    def height(self) -> int:
        return self._fixed_dim(2 if self.layout is Layout.NCHW else 1)

    @property
    def width(self) -> int:
        return self._fixed_dim(3 if self.layout is Layout.NCHW else 2)

    def _fixed_dim(self, axis: int) -> int:
        dim = self.input_shape[axis]
        assert dim is not None  # spec_from_model refuses symbolic channels, height or width
        return dim

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.input_dtype)


def parse_metadata(props: dict[str, str]) -> ModelMetadata:
    raw = {}
    for key, value in props.items():
        if key.startswith(METADATA_PREFIX):
            name = key.removeprefix(METADATA_PREFIX)
            try:
                raw[name] = value if name in STRING_METADATA else json.loads(value)
            except json.JSONDecodeError:
                raw[name] = value  # plain strings need no JSON quoting
    try:
        return ModelMetadata.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = METADATA_PREFIX + ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"model metadata {field}: {first['msg']}", field="file", rule="model-metadata"
        ) from None


def infer_layout(shape: list[int | None], declared: Layout | None) -> Layout:
    """NCHW when dimension 1 is 1 or 3 channels, NHWC when the last one is."""
    if declared is not None:
        return declared
    if shape[1] in (1, 3):
        return Layout.NCHW
    if shape[3] in (1, 3):
        return Layout.NHWC
    raise InvalidInput(
        f"cannot tell the layout of input shape {shape}: no 1 or 3 channel axis",
        field="file",
        rule="model-input",
    )


def dims(shape: list[int | str | None]) -> list[int | None]:
    """Symbolic or unknown ONNX dimensions become ``None``."""
    return [d if isinstance(d, int) and d > 0 else None for d in shape]


def numpy_dtype(onnx_type: str) -> np.dtype:
    try:
        return ONNX_TENSOR_TYPES[onnx_type]
    except KeyError:
        raise InvalidInput(
            f"model input type {onnx_type} is not supported", field="file", rule="model-input"
        ) from None
