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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from serve_app.codecs.dtypes import ONNX_TENSOR_TYPES
from serve_app.errors import InvalidInput

METADATA_PREFIX = "medai."
STRING_METADATA = {"description", "clinical_domain"}
"""Free text: never JSON-decoded, so "42" or "null" stay what they say."""


class Layout(StrEnum):
    NCHW = "NCHW"
    NHWC = "NHWC"


class ModelKind(StrEnum):
    """What a model's output means; its postprocessing is ``serve_app.runtime.kinds``."""

    CLASSIFICATION = "classification"
    """(batch, classes) scores: one label per image."""
    SEGMENTATION = "segmentation"
    """(batch, classes, height, width) per-pixel scores, or a (batch, height, width) mask
    of class indexes: one mask per class."""
    DETECTION = "detection"
    """(batch, boxes, 4 + classes): x0, y0, x1, y1 in input pixels, then class scores."""


MAX_REGION_LABELS = 32
"""Most classes a segmentation or detection model may declare: each class of a
segmentation answer carries a whole mask."""
MAX_DETECTIONS = 1000
"""Most boxes one detection answer may hold (``medai.max_detections``)."""


class ModelMetadata(BaseModel):
    """The ``medai.*`` metadata_props of a model file; every key optional."""

    model_config = ConfigDict(extra="ignore")

    kind: ModelKind = ModelKind.CLASSIFICATION
    labels: list[str] = Field(
        default_factory=lambda: ["negative", "positive"], min_length=1, max_length=100_000
    )
    """Class names, one per output class; a classifier needs two (one output cannot say no),
    a segmentation or detection model at most ``MAX_REGION_LABELS``."""
    positive_index: int | None = None
    threshold: float = Field(0.85, ge=0.0, le=1.0)
    """Classifier: the decision threshold. Segmentation: a pixel belongs to a class whose
    probability exceeds it. Detection: the least score of a box kept."""
    nms_iou: float = Field(0.5, ge=0.0, le=1.0)
    """Detection: a box overlapping a higher-scored box of its label by more than this
    intersection over union is dropped (non-maximum suppression)."""
    max_detections: int = Field(100, ge=1, le=MAX_DETECTIONS)
    """Detection: the most boxes one answer keeps, highest scores first."""
    background_index: int | None = None
    """Segmentation: the class that is background (given no mask), if the model has one."""
    mean: list[float] | None = None
    std: list[float] | None = None
    output_kind: Literal["probabilities", "logits"] = "probabilities"
    layout: Layout | None = None
    clinical_domain: str | None = None
    description: str | None = None

    @field_validator("labels")
    @classmethod
    def _labels_fit_the_kind(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        # NOTE: ``kind`` is declared first, so it is validated (when valid) before labels.
        kind = info.data.get("kind", ModelKind.CLASSIFICATION)
        if kind is ModelKind.CLASSIFICATION and len(labels) < 2:
            raise ValueError("a classifier needs at least two labels")
        if kind is not ModelKind.CLASSIFICATION and len(labels) > MAX_REGION_LABELS:
            raise ValueError(f"a {kind.value} model may have at most {MAX_REGION_LABELS} labels")
        if len(set(labels)) != len(labels):
            raise ValueError("every label must be distinct")
        return labels

    @field_validator("background_index")
    @classmethod
    def _background_is_a_label(cls, index: int | None, info: ValidationInfo) -> int | None:
        labels = info.data.get("labels")
        if index is not None and labels is not None and not 0 <= index < len(labels):
            raise ValueError(f"not a label index 0..{len(labels) - 1}")
        return index


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
        key = METADATA_PREFIX + ".".join(str(p) for p in first["loc"])
        raise metadata_error(f"model metadata {key}: {first['msg']}", key) from None


def metadata_error(detail: str, key: str, rule: str = "model-metadata") -> InvalidInput:
    """A refused upload (field ``file``) whose problem also names the metadata ``key``."""
    entry = {"field": "file", "rule": rule, "message": detail, "key": key}
    return InvalidInput(detail, field="file", rule=rule, errors=[entry])


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
