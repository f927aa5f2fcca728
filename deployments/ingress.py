from __future__ import annotations

import asyncio

from fastapi import FastAPI
from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from serve_app.codecs.types import DecodedImage, EncodedImage
from serve_app.errors import MedAIError, ServiceUnavailable
from serve_app.http.app import create_app
from serve_app.pipeline import Prediction
from serve_app.registry.lifecycle import ModelState
from serve_app.settings import Settings

LARGE_PAYLOAD_BYTES = 1024 * 1024
"""Above this an image goes to the preprocessor through Ray's object store.

NOTE: in throughput-optimized mode handle calls travel over gRPC, whose
messages are capped at 4 MiB by default; a 2048x2048 float32 image is 16 MiB.
"""

READINESS_TIMEOUT_S = 10.0


def payload_bytes(image: DecodedImage | EncodedImage) -> int:
    return image.pixels.nbytes if isinstance(image, DecodedImage) else len(image.data)


class ServeBackend:
    """The HTTP layer's backend, through the preprocessor deployment's handle."""

    def __init__(self, preprocessor: DeploymentHandle) -> None:
        self.preprocessor = preprocessor
        self.by_reference = preprocessor.options(_by_reference=True)

    async def infer(self, image: DecodedImage | EncodedImage, model: str | None) -> Prediction:
        handle = (
            self.by_reference if payload_bytes(image) > LARGE_PAYLOAD_BYTES else self.preprocessor
        )
        try:
            outcome = await handle.infer.remote(image, model)
        except (BackPressureError, DeploymentUnavailableError):
            raise ServiceUnavailable("inference capacity is exhausted; retry shortly") from None
        if isinstance(outcome, MedAIError):
            raise outcome
        return outcome

    async def readiness(self) -> dict[str, ModelState]:
        try:
            return await asyncio.wait_for(self.preprocessor.readiness.remote(), READINESS_TIMEOUT_S)
        except Exception:
            raise ServiceUnavailable("the preprocessing deployment does not answer") from None


@serve.deployment(max_ongoing_requests=128)
@serve.ingress()
class Ingress:
    """The HTTP front door: FastAPI validation, then the preprocessing pool."""

    def __init__(self, settings: Settings, preprocessor: DeploymentHandle) -> None:
        self.settings = settings
        self.preprocessor = preprocessor

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.settings, ServeBackend(self.preprocessor))
