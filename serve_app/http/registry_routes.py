"""The model registry over HTTP: register an upload, list versions, promote, roll back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, UploadFile

from serve_app.auth.rbac import Permission
from serve_app.auth.tokens import Principal
from serve_app.http.security import require
from serve_app.registry.registry import ModelRegistry, Registration
from serve_app.schemas.models import (
    LABEL_PATTERN,
    NAME_PATTERN,
    VERSION_PATTERN,
    ModelVersionOut,
    Promotion,
    Rollback,
)
from serve_app.schemas.problem import problem_responses

ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
Engineer = Annotated[Principal, require(Permission.MANAGE_MODELS)]
Viewer = Annotated[Principal, require(Permission.MANAGE_MODELS, Permission.READ_AUDIT)]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
Version = Annotated[str, Path(pattern=VERSION_PATTERN)]
Label = Annotated[str | None, Form(pattern=LABEL_PATTERN)]


def build_registry_router(registry: ModelRegistry) -> APIRouter:
    router = APIRouter(tags=["models"])

    @router.post("/models", status_code=201, response_model=ModelVersionOut, responses=ERRORS)
    async def register(
        caller: Engineer,
        file: Annotated[UploadFile, File(description="The ONNX model (IR version 13 or older).")],
        name: Annotated[str, Form(pattern=NAME_PATTERN)],
        version: Annotated[str, Form(pattern=VERSION_PATTERN)],
        clinical_domain: Label = None,
        fda_submission_id: Label = None,
        iso_certification: Label = None,
    ) -> ModelVersionOut:
        """Register a version: hashed, inspected, run once on a zero input, recorded as
        development."""
        form = Registration(name, version, clinical_domain, fda_submission_id, iso_certification)
        return await registry.register(await file.read(), form, caller)

    @router.get("/models", response_model=list[ModelVersionOut], responses=ERRORS)
    async def versions(
        caller: Viewer, name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None
    ) -> list[ModelVersionOut]:
        """Registered versions, oldest first, with their lifecycle status."""
        return await registry.versions(name)

    @router.post(
        "/models/{name}/{version}/promote",
        response_model=list[ModelVersionOut],
        responses=ERRORS,
    )
    async def promote(
        caller: Engineer, name: Name, version: Version, body: Promotion
    ) -> list[ModelVersionOut]:
        """Move a version on: to production retires the production version it replaces."""
        return await registry.promote(name, version, body.to, caller)

    @router.post("/models/{name}/rollback", response_model=list[ModelVersionOut], responses=ERRORS)
    async def rollback(caller: Engineer, name: Name, body: Rollback) -> list[ModelVersionOut]:
        """Make a validated or retired version production again, retiring the current one."""
        return await registry.rollback(name, body.to_version, caller)

    return router
