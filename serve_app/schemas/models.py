"""Wire shapes of the model registry."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from serve_app.catalog.status import ModelStatus

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
LABEL_PATTERN = r"^[\w .:/()+-]{1,64}$"
"""Free-text registration fields: short, printable, no markup."""


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    model_name: str
    version: str
    status: ModelStatus
    file_hash: str = Field(description="SHA-256 of the ONNX file; the store names it by this.")
    file_size_bytes: int
    input_shape: list[int | None]
    output_shape: list[int | None]
    inference_latency_ms: float | None = Field(
        description="Loading the file and one zero-input run at registration, on the"
        " registering machine."
    )
    clinical_domain: str | None
    confidence_threshold: float | None
    fda_submission_id: str | None
    iso_certification: str | None
    created_at: datetime | None = None


class Promotion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: ModelStatus = Field(description="development → validation → production → retired.")


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: str = Field(
        pattern=VERSION_PATTERN,
        description="A retired or validated version to serve again instead of production.",
    )
