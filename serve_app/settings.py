"""The one settings object.

Environment variables use the prefix ``MEDAI_`` and ``__`` between groups
(``MEDAI_LIMITS__MAX_SIDE=4096``). ``deployments.app.build_app`` builds it
once, with the application ``args`` of ``serve_config.yaml`` as overrides,
and hands it to every deployment. Nothing reads configuration at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class LimitsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_body_bytes: int = 50 * 1024 * 1024
    """Largest request body accepted, in bytes (413 beyond)."""
    min_side: int = 64
    """Smallest accepted image width or height, in pixels."""
    max_side: int = 2048
    """Largest accepted image width or height, in pixels (checked before decoding)."""
    max_batch_images: int = 100
    """Most images accepted in one ``/infer/batch`` request."""


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` uses CUDA when the replica was given a GPU, the CPU otherwise."""
    intra_op_threads: int = 0
    """ONNX Runtime threads inside one operator; 0 lets ONNX Runtime choose."""
    inter_op_threads: int = 1
    """ONNX Runtime threads across operators (sequential execution uses 1)."""


class HopSettings(BaseModel):
    """How the ingress coalesces concurrent requests into one call to the preprocessing pool."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_batch_size: int = Field(32, ge=1, le=256)
    """Most requests carried by one ingress-to-preprocessor message (1 turns coalescing off)."""
    batch_wait_timeout_s: float = Field(0.0, ge=0, le=0.1)
    """How long the first request waits for company; 0 takes whatever is already queued."""


class ModelConfig(BaseModel):
    """One served model: its replicas are the deployment ``model-<name>``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    version: str | None = None
    """Version to serve; ``None`` serves the newest registered version."""
    max_batch_size: int = Field(16, ge=1, le=1024)
    """Largest dynamic batch one ONNX Runtime call takes."""
    batch_wait_timeout_s: float = Field(0.005, ge=0, le=1)
    """How long a partial batch waits for more requests."""
    max_concurrent_batches: int = Field(1, ge=1, le=64)
    """Batches one replica runs at once, each in its own thread on one shared session."""
    intra_op_threads: int | None = Field(None, ge=0, le=256)
    """ONNX Runtime threads per call for this model; ``None`` uses ``runtime.intra_op_threads``."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEDAI_",
        env_nested_delimiter="__",
        extra="forbid",
        use_attribute_docstrings=True,
    )

    environment: Literal["development", "production"] = "development"
    """Deployment kind; ``production`` refuses development defaults (such as a development
    signing key, once authentication lands)."""
    model_store: Path = REPO_ROOT / "model_store"
    """Directory of the content-addressed model store (``blobs/`` + ``catalog.json``)."""
    models: list[ModelConfig] = Field(
        default_factory=lambda: [ModelConfig(name="chest-xray-demo"), ModelConfig(name="derm-demo")]
    )
    """Models served, each by its own deployment with its own batching."""
    default_model: str = "chest-xray-demo"
    """Model used when a request names none; ``/readyz`` waits for it."""
    limits: LimitsSettings = LimitsSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    hops: HopSettings = HopSettings()

    @model_validator(mode="after")
    def _default_model_is_served(self) -> Settings:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: duplicate names in {names}")
        if self.default_model not in names:
            raise ValueError(f"default_model {self.default_model!r} is not among models {names}")
        return self

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)
