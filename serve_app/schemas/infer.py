from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(:[A-Za-z0-9][A-Za-z0-9_.+-]{0,63})?$"


class InferRequest(BaseModel):
    """One image as a flat, row-major (height, width, channels) pixel list."""

    model_config = ConfigDict(extra="forbid")

    data: list[float] = Field(min_length=1, description="Pixel values, row-major HxWxC.")
    width: int = Field(description="Image width in pixels (limits.min_side..limits.max_side).")
    height: int = Field(description="Image height in pixels (limits.min_side..limits.max_side).")
    channels: Literal[1, 3] = 1
    dtype: Literal["uint8", "uint16", "float32", "float64"] = Field(
        "float32", description="uint8 0..255, uint16 0..65535, floats 0..1."
    )
    patient_id: str | None = Field(None, min_length=1, max_length=128)
    model: str | None = Field(
        None,
        pattern=MODEL_REF_PATTERN,
        description='"name" or "name:version"; default model if absent.',
    )


class BatchInferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[InferRequest] = Field(
        min_length=1, description="1..limits.max_batch_images images; each fails or succeeds alone."
    )
    priority: Literal["low", "normal", "high"] = "normal"


class InferResponse(BaseModel):
    inference_id: str
    model_name: str
    model_version: str
    outputs: list[float] = Field(description="The model's raw output row.")
    labels: list[str]
    confidence_score: float
    prediction: str
    threshold: float
    latency_ms: float
    frame: int | None = Field(None, description="DICOM frame used (0-based).")
    frames: int | None = Field(None, description="Frames in the DICOM file.")


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
    priority: str
    results: list[BatchItem]


class Readiness(BaseModel):
    ready: bool
    models: dict[str, str] = Field(description="Model name to lifecycle state.")
