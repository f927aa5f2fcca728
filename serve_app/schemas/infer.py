from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from serve_app.records.inference import InferenceRecord

MODEL_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(:[A-Za-z0-9][A-Za-z0-9_.+-]{0,63})?$"


def _exact_int(value: Any) -> Any:
    # Literal[1, 3] alone takes true and 1.0, which equal 1 in Python.
    if isinstance(value, bool | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class StrictRequest(BaseModel):
    """A request body whose unknown fields are refused, the first of them named."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _first_unknown_field_only(cls, data: Any) -> Any:
        # NOTE: extra="forbid" reports every unknown key: an object of a million of them
        # (12 MB) was a million errors and 6 s. One of them names the field and rule.
        if isinstance(data, dict):
            unknown = next((key for key in data if key not in cls.model_fields), None)
            if unknown is not None:
                return {k: v for k, v in data.items() if k in cls.model_fields or k == unknown}
        return data


class InferRequest(StrictRequest):
    """One image as a flat, row-major (height, width, channels) pixel list."""

    # NOTE: fail_fast stops at the first bad value: a 4 MB list of strings was a million
    # errors, 8 s and a 126 MB problem body.
    data: list[float] = Field(
        min_length=1, fail_fast=True, description="Pixel values, row-major HxWxC."
    )
    # NOTE: strict: "64", 64.0 or true are not widths; lax coercion would accept them.
    width: int = Field(
        strict=True, description="Image width in pixels (limits.min_side..limits.max_side)."
    )
    height: int = Field(
        strict=True, description="Image height in pixels (limits.min_side..limits.max_side)."
    )
    channels: Annotated[Literal[1, 3], BeforeValidator(_exact_int)] = 1
    dtype: Literal["uint8", "uint16", "float32", "float64"] = Field(
        "float32", description="uint8 0..255, uint16 0..65535, floats 0..1."
    )
    patient_id: str | None = Field(None, min_length=1, max_length=128)
    model: str | None = Field(
        None,
        pattern=MODEL_REF_PATTERN,
        description='"name" or "name:version"; default model if absent.',
    )


class BatchInferRequest(StrictRequest):
    images: list[InferRequest] = Field(
        min_length=1, description="1..limits.max_batch_images images; each fails or succeeds alone."
    )
    # NOTE: nothing acts on it. Kept, and echoed, so that clients that send it (extra
    # fields are refused) keep working; to be removed in a later API version. Marked in
    # the schema only: pydantic's own `deprecated` warns on every read of the field.
    priority: Literal["low", "normal", "high"] = Field(
        "normal",
        description="Deprecated: accepted and ignored.",
        json_schema_extra={"deprecated": True},
    )


def batch_request_model(max_images: int) -> type[BatchInferRequest]:
    """``BatchInferRequest`` refusing more than ``max_images`` images before validating one.

    The raw list is counted first (rule ``max-items``), so 5000 images cost a ``len()``
    rather than 5000 validated pixel lists (measured: 2.8 s and 750 MB for 41 MB of JSON).
    """

    def at_most(images: Any) -> Any:
        if isinstance(images, list) and len(images) > max_images:
            raise PydanticCustomError(
                "max-items", "at most {max_images} images per batch", {"max_images": max_images}
            )
        return images

    images = Annotated[
        list[InferRequest],
        BeforeValidator(at_most),
        Field(min_length=1, max_length=max_images, description=f"1..{max_images} images."),
    ]
    return create_model("BatchInferRequest", __base__=BatchInferRequest, images=(images, ...))


WIRE_NAMES = {"confidence_score": "confidence"}
"""The answer's field names that differ from the record's (and the stored row's)."""


class ResultFields(BaseModel):
    """What an answer and a stored result both show of an ``InferenceRecord``."""

    inference_id: str
    model_name: str
    model_version: str
    outputs: list[float] = Field(description="The model's raw output row.")
    prediction: str
    threshold: float
    latency_ms: float
    endpoint: str | None = Field(None, description="The A/B route that chose the version.")
    arm: str | None = Field(None, description="`name:version` the route chose.")
    findings: dict[str, Any] | None = Field(
        None,
        description="A segmentation's masks (`kind` segmentation: `classes`, each with a COCO"
        " run-length `mask`) or a detection's `boxes`, on the source image; null for a"
        " classifier (README, Model kinds).",
    )


class InferResponse(ResultFields):
    """One image's answer: the fields of its ``InferenceRecord`` a client is shown."""

    labels: list[str]
    confidence_score: float
    frame: int | None = Field(None, description="DICOM frame used (0-based).")
    frames: int | None = Field(None, description="Frames in the DICOM file.")

    @classmethod
    def of(cls, record: InferenceRecord) -> InferResponse:
        return cls(
            **{name: getattr(record, WIRE_NAMES.get(name, name)) for name in cls.model_fields}
        )


class BatchItem(BaseModel):
    index: int
    status: int
    result: InferResponse | None = None
    error: dict[str, Any] | None = Field(None, description="RFC 9457 problem for a failed image.")


class BatchInferResponse(BaseModel):
    batch_id: str
    total_images: int
    successful: int
    failed: int
    priority: str = Field(
        description="Deprecated: the request's, echoed.", json_schema_extra={"deprecated": True}
    )
    results: list[BatchItem]


class ComponentReadiness(BaseModel):
    name: str = Field(description="The deployment: Ingress, Preprocessor, model-<name>, ...")
    ready: bool
    reason: str = Field(description='"ready", or a short reason it is not.')
    execution_provider: str | None = Field(
        None,
        description="A model runner's ONNX Runtime execution provider "
        "(CUDAExecutionProvider, TensorrtExecutionProvider, CPUExecutionProvider).",
    )


class Readiness(BaseModel):
    ready: bool
    models: dict[str, str] = Field(description="Model name to lifecycle state.")
    components: list[ComponentReadiness] | None = Field(
        None, description="Each deployment and model runner (only with ?verbose=true)."
    )
