"""The Open Inference Protocol (KServe v2) routes, under ``/v2``.

Same rules as every route: a bearer token with the ``infer`` permission (health alone is
public), every inference stored and audited before the 200, every bad input a 4xx; only
the error body is the protocol's own (``{"error": ...}``, ``http/problems.py``).

``{name}`` is what ``/infer``'s ``model`` is: a served model (its production version), a
routed endpoint (an A/B arm is drawn per row), or ``name`` + ``/versions/{version}``,
pinned. An input of the model's input name is either its tensor (rows already of the
model's shape and type: nothing to decode) or ``BYTES``, one encoded PNG, JPEG or DICOM
per row. A request's rows stand or fall together: one bad row answers the request's
error and nothing is stored. Each row gets the model's output row (a segmentation or
detection model: its ``findings``, one JSON document a row) and, as outputs of their own,
the platform's ``prediction``, ``confidence`` and ``inference_id``.
"""

# NOTE: no `from __future__ import annotations`: FastAPI reads the route signatures.

import asyncio
from collections.abc import Iterable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request, Response

from serve_app.audit.events import AuditEvent
from serve_app.audit.trail import AuditTrail
from serve_app.auth.rbac import Permission
from serve_app.auth.tokens import Principal
from serve_app.backend import Backend
from serve_app.canonical import canonical_json
from serve_app.catalog.spec import ModelKind, ModelSpec
from serve_app.codecs.sniff import sniff
from serve_app.codecs.tensors import BYTES, Tensor, datatype_of
from serve_app.codecs.types import EncodedImage, TensorInput
from serve_app.errors import Conflict, InvalidInput, MedAIError, NotFound, ServiceUnavailable
from serve_app.http.metrics import Metrics
from serve_app.http.routes import components, logged
from serve_app.http.security import require
from serve_app.job import Job
from serve_app.logs import Pseudonymizer
from serve_app.readiness import model_component
from serve_app.records.inference import InferenceRecord
from serve_app.registry.registry import ModelRegistry
from serve_app.schemas.models import NAME_PATTERN, VERSION_PATTERN
from serve_app.schemas.v2 import (
    HEADER_LENGTH,
    ErrorBody,
    InferCall,
    ModelMetadata,
    ServerMetadata,
    TensorMetadata,
    encode_infer,
    parse_infer,
)
from serve_app.settings import Settings

PUBLIC_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "onnxruntime_onnx"
PREDICTION, CONFIDENCE, INFERENCE_ID = "prediction", "confidence", "inference_id"
"""The platform's outputs beside the model's own (a model output of the same name wins)."""
FINDINGS = "findings"
"""A segmentation's or detection's own output: each row's findings as ``/infer`` answers
them (masks run-length encoded on the source image, boxes in its pixels), as JSON. A mask
or box list is no tensor of the model's output shape, and rows' lists differ in length."""
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": "The protocol's error body."}
    for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}

EMPTY_200: dict[int | str, dict[str, Any]] = {200: {"description": "Yes.", "content": {}}}
ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The outputs: JSON, or with binary data the JSON header then raw bytes"
        " (``Inference-Header-Content-Length``).",
        "content": {"application/json": {}, "application/octet-stream": {}},
    }
}

Inferrer = Annotated[Principal, require(Permission.INFER)]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
Version = Annotated[str, Path(pattern=VERSION_PATTERN)]


def build_v2_router(
    settings: Settings,
    backend: Backend,
    trail: AuditTrail,
    registry: ModelRegistry,
    pseudonymize: Pseudonymizer,
    metrics: Metrics,
    version: str,
) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["v2"], responses=ERRORS)
    limits = settings.limits

    @router.get("/health/live", response_class=Response, responses=EMPTY_200)
    async def live() -> Response:
        """The server is up (no token)."""
        return Response(status_code=200)

    @router.get("/health/ready", response_class=Response, responses=EMPTY_200)
    async def ready() -> Response:
        """Every deployment and served model is ready (no token): ``/readyz``'s rule."""
        down = [c.name for c in await components(backend, settings) if not c.ready]
        if down:
            raise ServiceUnavailable(f"not ready: {', '.join(down)}")
        return Response(status_code=200)

    @router.get("", response_model=ServerMetadata)
    async def server_metadata(caller: Inferrer) -> ServerMetadata:
        return ServerMetadata(name="medai-flow", version=version, extensions=EXTENSIONS)

    async def described(ref: str) -> ModelSpec:
        return (await registry.serving()).describe(ref)

    versions: dict[str, ModelSpec] = {}
    """Specs of versions that answered, by ``name:version``: a version never changes."""

    async def answered_by(record: InferenceRecord) -> ModelSpec:
        ref = f"{record.model_name}:{record.model_version}"
        if ref not in versions:
            plan = await registry.serving()
            for spec in (*plan.models.values(), *plan.routed.values()):
                versions.setdefault(spec.ref, spec)
        if ref not in versions:  # retired between its answer and now: answer what it said
            raise ServiceUnavailable(f"model {ref} stopped serving during the request")
        return versions[ref]

    async def metadata(name: str, ref: str) -> ModelMetadata:
        spec = await described(ref)
        return ModelMetadata(
            name=name,
            versions=[spec.version],
            platform=PLATFORM,
            inputs=[
                TensorMetadata(
                    name=spec.input_name,
                    datatype=datatype_of(spec.dtype),
                    shape=_dims(spec.input_shape),
                )
            ],
            outputs=[TensorMetadata(name=n, datatype=t, shape=s) for n, t, s in _outputs(spec)],
        )

    @router.get("/models/{name}", response_model=ModelMetadata)
    async def model_metadata(name: Name, caller: Inferrer) -> ModelMetadata:
        """Inputs and outputs (name, datatype, shape; -1 for any size) of what ``name``
        answers with."""
        return await metadata(name, name)

    @router.get("/models/{name}/versions/{version}", response_model=ModelMetadata)
    async def version_metadata(name: Name, version: Version, caller: Inferrer) -> ModelMetadata:
        return await metadata(name, f"{name}:{version}")

    async def model_ready(ref: str) -> Response:
        spec = await described(ref)
        runner = model_component(spec.name)
        states = {c.name: c for c in await components(backend, settings)}
        if runner in states and not states[runner].ready:
            raise ServiceUnavailable(f"model {spec.name} is not ready")
        return Response(status_code=200)

    @router.get("/models/{name}/ready", response_class=Response, responses=EMPTY_200)
    async def model_is_ready(name: Name, caller: Inferrer) -> Response:
        return await model_ready(name)

    @router.get(
        "/models/{name}/versions/{version}/ready", response_class=Response, responses=EMPTY_200
    )
    async def version_is_ready(name: Name, version: Version, caller: Inferrer) -> Response:
        return await model_ready(f"{name}:{version}")

    async def infer(ref: str, request: Request, caller: Principal) -> Response:
        body = await request.body()
        header = request.headers.get(HEADER_LENGTH)
        call = await asyncio.to_thread(
            parse_infer, body, header, limits.max_body_bytes, limits.max_json_body_bytes
        )
        patient_ref = pseudonymize(call.patient_id)
        jobs = [
            Job.accept(image, caller, ref, patient_ref)
            for image in _images(call, limits.max_batch_images)
        ]
        outcomes = [logged(metrics, caller, patient_ref, o) for o in await backend.infer(jobs)]
        for row, outcome in enumerate(outcomes):
            if isinstance(outcome, MedAIError):  # the request's rows stand or fall together
                outcome.detail = f"row {row}: {outcome.detail}"
                raise outcome
        records = [o for o in outcomes if isinstance(o, InferenceRecord)]
        specs = {spec.ref: spec for spec in [await answered_by(r) for r in records]}
        outputs = _answer(records, _one_output(specs.values()), call)
        await trail.record([AuditEvent.inference(r) for r in records])
        content, headers = encode_infer(
            records[0].model_name,
            records[0].model_version,
            call.id,
            outputs,
            {t.name for t in outputs if call.binary(t.name)},
        )
        return Response(content, headers=headers)

    @router.post("/models/{name}/infer", response_class=Response, responses=ANSWER)
    async def model_infer(name: Name, request: Request, caller: Inferrer) -> Response:
        """Run the rows of the request's input through what ``name`` answers with: JSON
        tensors, or the binary-data extension (``Inference-Header-Content-Length``)."""
        return await infer(name, request, caller)

    @router.post(
        "/models/{name}/versions/{version}/infer", response_class=Response, responses=ANSWER
    )
    async def version_infer(
        name: Name, version: Version, request: Request, caller: Inferrer
    ) -> Response:
        return await infer(f"{name}:{version}", request, caller)

    return router


def _dims(shape: list[int | None]) -> list[int]:
    return [-1 if d is None else d for d in shape]


def _outputs(spec: ModelSpec) -> list[tuple[str, str, list[int]]]:
    """Each output's name, datatype and shape: the model's (a region model's findings),
    then the platform's."""
    if spec.metadata.kind is ModelKind.CLASSIFICATION:
        dtype = np.dtype(spec.output_dtype or "float32")
        own = (spec.output_name, datatype_of(dtype), _dims(spec.output_shape))
    else:
        own = (FINDINGS, BYTES, [-1])
    platform = [(PREDICTION, BYTES, [-1]), (CONFIDENCE, "FP32", [-1]), (INFERENCE_ID, BYTES, [-1])]
    return [own, *(o for o in platform if o[0] != own[0])]


def _images(call: InferCall, most: int) -> list[EncodedImage | TensorInput]:
    """One image per row of the request's one input, at most ``most``."""
    if len(call.inputs) != 1:
        raise InvalidInput(
            f"the model takes one input; the request has {len(call.inputs)}",
            field="inputs",
            rule="one-input",
        )
    (tensor,) = call.inputs
    if not tensor.shape or not 1 <= tensor.rows <= most:
        raise InvalidInput(
            f"input {tensor.name}: 1 to {most} rows along its first dimension",
            field=f"inputs.{tensor.name}.shape",
            rule="rows",
        )
    if isinstance(tensor.data, list):  # BYTES: encoded files, one a row
        if len(tensor.data) != tensor.rows:
            raise InvalidInput(
                f"input {tensor.name}: one encoded image per row",
                field=f"inputs.{tensor.name}.shape",
                rule="one-image-per-row",
            )
        return [EncodedImage(data, sniff(data, None)) for data in tensor.data]
    return [TensorInput(tensor.name, tensor.data[i : i + 1]) for i in range(tensor.rows)]


def _one_output(specs: Iterable[ModelSpec]) -> ModelSpec:
    """The version whose output the rows share: rows an A/B route sent to versions whose
    outputs differ cannot make one tensor."""
    first, *others = specs
    if any(_outputs(s)[0] != _outputs(first)[0] for s in others):
        raise Conflict(
            "the rows were answered by versions with different outputs (an A/B route):"
            " send one row per request, or pin a version",
            field="model",
            rule="one-output",
        )
    return first


def _answer(records: list[InferenceRecord], spec: ModelSpec, call: InferCall) -> list[Tensor]:
    """The requested outputs (all when none are named), one row per record."""
    name, datatype, _ = _outputs(spec)[0]
    n = (len(records),)
    if name == FINDINGS:
        own = Tensor(FINDINGS, BYTES, n, [canonical_json(r.findings).encode() for r in records])
    else:
        dtype = np.dtype(spec.output_dtype or "float32")
        rows = np.array([r.outputs for r in records], dtype=dtype)
        own = Tensor(name, datatype, rows.shape, rows)
    platform = {
        PREDICTION: Tensor(PREDICTION, BYTES, n, [r.prediction.encode() for r in records]),
        CONFIDENCE: Tensor(CONFIDENCE, "FP32", n, np.array([r.confidence for r in records], "f4")),
        INFERENCE_ID: Tensor(INFERENCE_ID, BYTES, n, [r.inference_id.encode() for r in records]),
    }
    every = {name: own} | {key: tensor for key, tensor in platform.items() if key != name}
    if call.outputs is None:
        return list(every.values())
    unknown = [n for n in call.outputs if n not in every]
    if unknown:
        raise NotFound(
            f"model {spec.ref} has no output {unknown[0]!r}", field="outputs", rule="known-output"
        )
    return [every[n] for n in call.outputs]
