"""HTTP routes: parse, validate, delegate to the backend, shape the reply."""

# NOTE: no `from __future__ import annotations`: FastAPI must see the batch body model,
# built per limits inside build_router, as an object rather than an unresolvable name.

import asyncio
import logging
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse

from serve_app.audit.events import AuditEvent
from serve_app.audit.trail import AuditTrail
from serve_app.auth.rbac import Permission
from serve_app.auth.tokens import Principal
from serve_app.backend import Backend
from serve_app.codecs.limits import check_dimensions
from serve_app.codecs.pixels import pixels_from_list
from serve_app.codecs.sniff import sniff
from serve_app.codecs.types import DecodedImage, EncodedImage
from serve_app.errors import MedAIError, ServiceUnavailable
from serve_app.http.json_body import OffLoopJsonRoute
from serve_app.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from serve_app.http.metrics import Metrics
from serve_app.http.problems import problem_response
from serve_app.http.security import require
from serve_app.job import Job, Outcome
from serve_app.logs import Pseudonymizer
from serve_app.readiness import Component, expect, model_component
from serve_app.runtime.lifecycle import ModelState
from serve_app.schemas.infer import (
    MODEL_REF_PATTERN,
    BatchInferRequest,
    BatchInferResponse,
    BatchItem,
    InferRequest,
    InferResponse,
    Readiness,
    batch_request_model,
)
from serve_app.schemas.problem import problem_responses
from serve_app.settings import Settings

log = logging.getLogger(__name__)

ERRORS = problem_responses(400, 401, 403, 404, 413, 415, 422, 429, 503)
Inferrer = Annotated[Principal, require(Permission.INFER)]
READINESS_TIMEOUT_S = 15.0
"""Longest ``/readyz`` waits for the components behind the ingress (each has its own)."""


def logged(
    metrics: Metrics, caller: Principal, patient_ref: str | None, outcome: Outcome
) -> Outcome:
    """``outcome``, logged (no PHI: the caller and the patient's pseudonym) and counted."""
    fields: dict[str, Any] = {"user": caller.subject, "patient": patient_ref}
    if isinstance(outcome, MedAIError):
        fields |= {"status": int(outcome.status), "rule": outcome.rule}
        metrics.inferences.labels(outcome.rule or outcome.slug, fields["status"]).inc()
    else:
        fields |= {"status": 200, "model": f"{outcome.model_name}:{outcome.model_version}"}
        metrics.inferences.labels(fields["model"], 200).inc()
    log.info("inference", extra=fields)
    return outcome


async def components(backend: Backend, settings: Settings) -> list[Component]:
    """Every component, the ingress and each served model's runner included, as the
    backend reports them within ``READINESS_TIMEOUT_S``; one not reported is not ready."""
    try:
        behind = await asyncio.wait_for(backend.readiness(), READINESS_TIMEOUT_S)
    except TimeoutError:
        behind = []  # each expected component is then "not reported"
    served = [model_component(m.name) for m in settings.models]
    return expect([Component("Ingress", True), *behind], ["Preprocessor", *served])


def build_router(
    settings: Settings,
    backend: Backend,
    trail: AuditTrail,
    pseudonymize: Pseudonymizer,
    metrics: Metrics,
) -> APIRouter:
    # NOTE: JSON bodies (the pixel lists) are parsed and validated in a thread.
    router = APIRouter(route_class=OffLoopJsonRoute)
    limits = settings.limits

    def pixels_image(body: InferRequest) -> DecodedImage:
        check_dimensions(body.width, body.height, limits)
        return pixels_from_list(body.data, body.width, body.height, body.channels, body.dtype)

    async def predict(
        image: DecodedImage | EncodedImage,
        model: str | None,
        caller: Principal,
        patient_id: str | None,
    ) -> InferResponse:
        """Run one image; answer only once its result and audit entry are committed."""
        patient_ref = pseudonymize(patient_id)
        (outcome,) = await backend.infer([Job.accept(image, caller, model, patient_ref)])
        logged(metrics, caller, patient_ref, outcome)
        if isinstance(outcome, MedAIError):
            raise outcome
        await trail.record([AuditEvent.inference(outcome)])
        return InferResponse.of(outcome)

    @router.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        dependencies=[] if settings.metrics_public else [require(Permission.READ_METRICS)],
    )
    async def metrics_text() -> PlainTextResponse:
        """Prometheus metrics of this ingress replica (Ray Serve's own are on Ray's port);
        in production only for a token granting ``metrics:read``."""
        return PlainTextResponse(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    @router.get(
        "/readyz",
        tags=["health"],
        response_model=Readiness,
        response_model_exclude_none=True,
        responses=problem_responses(422, 503),
    )
    async def readyz(verbose: bool = False) -> Readiness | JSONResponse:
        """Every deployment answers and every served model is loaded; ``verbose=true``
        lists each component with why it is not ready."""
        every = await components(backend, settings)
        detail = [asdict(c) for c in every] if verbose else None
        down = [c for c in every if not c.ready]
        if down:
            error = ServiceUnavailable(
                f"not ready: {', '.join(c.name for c in down)}",
                errors=[{"field": c.name, "rule": "not-ready", "message": c.reason} for c in down],
            )
            return problem_response(error, **({"components": detail} if verbose else {}))
        models = {m.name: ModelState.READY.value for m in settings.models}
        return Readiness(ready=True, models=models, components=detail)

    @router.post("/infer", tags=["inference"], response_model=InferResponse, responses=ERRORS)
    async def infer(body: InferRequest, caller: Inferrer) -> InferResponse:
        """Classify one image sent as a JSON pixel list."""
        image = await asyncio.to_thread(pixels_image, body)  # millions of floats to numpy
        return await predict(image, body.model, caller, body.patient_id)

    if TYPE_CHECKING:  # the class built below is a BatchInferRequest; mypy checks that
        BatchBody: TypeAlias = BatchInferRequest
    else:
        BatchBody = batch_request_model(limits.max_batch_images)

    @router.post(
        "/infer/batch", tags=["inference"], response_model=BatchInferResponse, responses=ERRORS
    )
    async def infer_batch(body: BatchBody, caller: Inferrer) -> BatchInferResponse:
        """Classify up to ``limits.max_batch_images`` images; each fails or succeeds alone."""
        batch_id = str(uuid.uuid4())

        def job(image: InferRequest, patient_ref: str | None) -> Job | MedAIError:
            try:
                return Job.accept(pixels_image(image), caller, image.model, patient_ref, batch_id)
            except MedAIError as exc:
                return exc

        refs = [pseudonymize(image.patient_id) for image in body.images]
        jobs = await asyncio.to_thread(
            lambda: [job(image, ref) for image, ref in zip(body.images, refs, strict=True)]
        )
        outcomes = iter(await backend.infer([j for j in jobs if isinstance(j, Job)]))
        items, events = [], []
        for index, (j, patient_ref) in enumerate(zip(jobs, refs, strict=True)):
            outcome = next(outcomes) if isinstance(j, Job) else j
            logged(metrics, caller, patient_ref, outcome)
            if isinstance(outcome, MedAIError):
                items.append(
                    BatchItem(index=index, status=outcome.status, error=outcome.to_problem())
                )
                continue
            items.append(BatchItem(index=index, status=200, result=InferResponse.of(outcome)))
            events.append(AuditEvent.inference(outcome))
        await trail.record(events)  # the whole batch's results in one write
        ok = len(events)
        return BatchInferResponse(
            batch_id=batch_id,
            total_images=len(items),
            successful=ok,
            failed=len(items) - ok,
            priority=body.priority,
            results=items,
        )

    @router.post("/infer/file", tags=["inference"], response_model=InferResponse, responses=ERRORS)
    async def infer_file(
        caller: Inferrer,
        file: Annotated[UploadFile, File(description="PNG, JPEG or DICOM, detected by content.")],
        patient_id: Annotated[str | None, Form(min_length=1, max_length=128)] = None,
        model: Annotated[str | None, Form(pattern=MODEL_REF_PATTERN)] = None,
        frame: Annotated[int | None, Form(ge=0, description="DICOM frame; default middle.")] = None,
    ) -> InferResponse:
        """Classify an uploaded PNG, JPEG or DICOM file."""
        data = await file.read()
        image = EncodedImage(
            data=data, format=sniff(data, file.content_type, file.filename), frame=frame
        )
        return await predict(image, model, caller, patient_id)

    return router
