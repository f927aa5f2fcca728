"""The image as a model sees it: what the console shows beside an answer.

Nothing is stored or audited: a preview makes no result, and reads none.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from serve_app.auth.rbac import Permission
from serve_app.auth.tokens import Principal
from serve_app.backend import Backend
from serve_app.codecs.sniff import sniff
from serve_app.codecs.types import EncodedImage
from serve_app.errors import MedAIError
from serve_app.http.security import require
from serve_app.schemas.infer import MODEL_REF_PATTERN
from serve_app.schemas.problem import problem_responses

ERRORS = problem_responses(400, 401, 403, 404, 413, 415, 422, 429, 503)
Inferrer = Annotated[Principal, require(Permission.INFER)]
PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "The model's view, as a PNG."}
}


def build_preview_router(backend: Backend) -> APIRouter:
    router = APIRouter(tags=["inference"])

    @router.post("/preview", response_class=Response, responses=PNG | ERRORS)
    async def preview(
        caller: Inferrer,
        file: Annotated[UploadFile, File(description="PNG, JPEG or DICOM, detected by content.")],
        model: Annotated[str | None, Form(pattern=MODEL_REF_PATTERN)] = None,
        frame: Annotated[int | None, Form(ge=0, description="DICOM frame; default middle.")] = None,
    ) -> Response:
        """The upload decoded (DICOM through its modality and VOI LUTs) and sized as the
        model ``model`` names takes it, before normalisation, as an 8-bit PNG."""
        data = await file.read()
        image = EncodedImage(data=data, format=sniff(data, file.content_type), frame=frame)
        drawn = await backend.preview(image, model)
        if isinstance(drawn, MedAIError):
            raise drawn
        return Response(drawn, media_type="image/png", headers={"Cache-Control": "no-store"})

    return router
