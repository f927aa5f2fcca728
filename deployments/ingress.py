from __future__ import annotations

import asyncio
from typing import cast

from fastapi import FastAPI
from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from deployments.audit_writer import trail_of
from deployments.hops import LARGE_PAYLOAD_BYTES, Hop
from deployments.registry import UNAVAILABLE as REGISTRY_UNAVAILABLE
from deployments.remote import Remote
from serve_app.audit.writer import WriterState
from serve_app.auth.credentials import load_credentials
from serve_app.codecs.types import EncodedImage
from serve_app.errors import MedAIError, ServiceUnavailable
from serve_app.http.app import create_app
from serve_app.job import Job, Outcome
from serve_app.logs import configure_logging
from serve_app.readiness import Component, model_components, probe
from serve_app.registry.registry import ModelRegistry
from serve_app.runtime.lifecycle import RunnerStatus
from serve_app.settings import Settings

PREPROCESSOR_READINESS_S = 10.0
"""The preprocessor asks every model runner at once, each within its own 5 s."""
READINESS_TIMEOUT_S = 5.0
MESSAGES_IN_FLIGHT = 4
"""Coalesced messages the ingress keeps in flight, so a burst never waits for an answer."""


def payload_bytes(jobs: list[Job]) -> int:
    return sum(job.image.nbytes for job in jobs)


class ServeBackend:
    """The HTTP layer's backend, through the preprocessor deployment's handle.

    Concurrent single requests are coalesced into one message to the preprocessing
    pool (``settings.hops``): every Serve hop costs CPU per message, so carrying
    many requests per message is what makes the three-deployment chain cheap.
    """

    def __init__(
        self,
        preprocessor: DeploymentHandle,
        settings: Settings,
        registry: DeploymentHandle,
        audit_writer: DeploymentHandle | None,
    ) -> None:
        self.preprocessor = preprocessor
        self.registry = registry
        self.audit_writer = audit_writer
        self.models = [m.name for m in settings.models]
        self.hop = Hop(preprocessor)
        self._coalesced = serve.batch(
            max_batch_size=settings.hops.max_batch_size,
            batch_wait_timeout_s=settings.hops.batch_wait_timeout_s,
            max_concurrent_batches=MESSAGES_IN_FLIGHT,
        )(self._send)

    async def infer(self, jobs: list[Job]) -> list[Outcome]:
        if len(jobs) == 1 and payload_bytes(jobs) <= LARGE_PAYLOAD_BYTES:
            return [await self._coalesced(jobs[0])]
        return await self._send(jobs) if jobs else []

    async def _send(self, jobs: list[Job]) -> list[Outcome]:
        try:
            return await self.hop(payload_bytes(jobs)).infer.remote(jobs)
        except (BackPressureError, DeploymentUnavailableError):
            raise ServiceUnavailable("inference capacity is exhausted; retry shortly") from None

    async def preview(self, image: EncodedImage, model: str | None) -> bytes | MedAIError:
        try:
            return await self.hop(len(image.data)).preview.remote(image, model)
        except (BackPressureError, DeploymentUnavailableError):
            raise ServiceUnavailable("preprocessing capacity is exhausted; retry shortly") from None

    async def readiness(self) -> list[Component]:
        """The preprocessor (which asks every model runner), the registry and the writer."""
        statuses: dict[str, RunnerStatus] = {}

        async def preprocessor() -> None:
            statuses.update(await self.preprocessor.readiness.remote())

        async def registry() -> None:
            await self.registry.serving.remote()  # what every preprocessor polls

        async def writer() -> str | None:
            assert self.audit_writer is not None
            state = await self.audit_writer.writer_state.remote()
            return None if state == WriterState.ACTIVE else f"audit writer is {state}"

        checks = [
            probe("Preprocessor", preprocessor, PREPROCESSOR_READINESS_S),
            probe("Registry", registry, READINESS_TIMEOUT_S),
        ]
        if self.audit_writer is not None:  # audit.enabled false: there is none
            checks.append(probe("AuditWriter", writer, READINESS_TIMEOUT_S))
        components = await asyncio.gather(*checks)
        return [*components, *model_components(statuses, self.models)]


@serve.deployment(max_ongoing_requests=128)
@serve.ingress()
class Ingress:
    """The HTTP front door: FastAPI validation, then the preprocessing pool; results and
    audit entries go to the audit writer before any 200."""

    def __init__(
        self,
        settings: Settings,
        preprocessor: DeploymentHandle,
        audit_writer: DeploymentHandle | None,
        registry: DeploymentHandle,
    ) -> None:
        self.settings = settings
        self.preprocessor = preprocessor
        self.audit_writer = audit_writer
        self.registry = registry

    def __serve_build_asgi_app__(self) -> FastAPI:
        configure_logging(self.settings.log_level)
        # NOTE: secrets are read here, inside the replica, never carried by bind arguments.
        credentials = load_credentials(self.settings)
        backend = ServeBackend(self.preprocessor, self.settings, self.registry, self.audit_writer)
        trail = trail_of(self.audit_writer, self.settings.audit)
        # NOTE: the registry's methods reach it through Remote.__getattr__ (mypy can't see).
        registry = cast(ModelRegistry, Remote(self.registry, REGISTRY_UNAVAILABLE))
        return create_app(self.settings, backend, trail, registry, credentials)
