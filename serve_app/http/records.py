"""Reading what was stored: one result, the audit trail a page at a time, its verification.

Every read is itself audited (21 CFR 11.10(e): the trail records who looked).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from serve_app.audit.events import AuditAction, AuditEvent
from serve_app.audit.store import MAX_READ
from serve_app.audit.trail import AuditTrail
from serve_app.auth.rbac import Permission, granted
from serve_app.auth.tokens import MAX_SUBJECT_CHARS, Principal
from serve_app.dicom_results import dicom_bytes
from serve_app.errors import NotFound
from serve_app.http.security import require
from serve_app.schemas.audit import AuditPage, ChainVerification, StoredResult
from serve_app.schemas.problem import problem_responses

ERRORS = problem_responses(401, 403, 404, 413, 422, 429, 503)
INFERENCE_ID = r"^[A-Za-z0-9-]{1,64}$"
DICOM = "application/dicom"
MAX_OWN_RESULTS = 100
MAX_SEQ = 2**63 - 1
"""Largest seq a BIGINT column holds: a larger ``after_seq`` is a 422, not a database error."""
Reader = Annotated[Principal, require(Permission.READ_OWN_RESULTS, Permission.READ_ANY_RESULTS)]
Auditor = Annotated[Principal, require(Permission.READ_AUDIT)]


def build_records_router(trail: AuditTrail) -> APIRouter:
    router = APIRouter()

    async def audited(
        caller: Principal, action: AuditAction, object_type: str, **details: Any
    ) -> None:
        await trail.record(
            [AuditEvent(caller.subject, action, object_type, role=caller.role, details=details)]
        )

    async def readable(caller: Principal, inference_id: str) -> StoredResult:
        found = await trail.result(inference_id)
        # NOTE: someone else's result is "not found", not "forbidden": ids stay unconfirmed.
        if found is None or not (
            granted(caller, Permission.READ_ANY_RESULTS) or found.requested_by == caller.subject
        ):
            raise NotFound(f"no result {inference_id}", field="inference_id", rule="exists")
        return found

    @router.get(
        "/results/{inference_id}", tags=["records"], response_model=StoredResult, responses=ERRORS
    )
    async def result(
        caller: Reader,
        inference_id: Annotated[str, Path(pattern=INFERENCE_ID, description="From the answer.")],
    ) -> StoredResult:
        """A stored result: clinicians see their own, auditors and admins any."""
        found = await readable(caller, inference_id)
        await audited(caller, AuditAction.RESULT_READ, "inference", inference_id=inference_id)
        return found

    @router.get(
        "/results/{inference_id}/dicom",
        tags=["records"],
        response_class=Response,
        responses={**ERRORS, 200: {"content": {DICOM: {}}, "description": "A SEG or an SR."}},
    )
    async def dicom_result(
        caller: Reader,
        inference_id: Annotated[str, Path(pattern=INFERENCE_ID, description="From the answer.")],
    ) -> Response:
        """A stored result of a DICOM input as DICOM: a Segmentation (SEG) for masks, a
        Comprehensive SR (TID 1500) for a classifier's finding or a detection's boxes."""
        found = await readable(caller, inference_id)
        # NOTE: highdicom's encoding is CPU work: off the event loop.
        data = await asyncio.to_thread(dicom_bytes, found)
        await audited(
            caller, AuditAction.RESULT_READ, "inference", inference_id=inference_id, format="dicom"
        )
        disposition = f'attachment; filename="{inference_id}.dcm"'
        return Response(data, media_type=DICOM, headers={"Content-Disposition": disposition})

    @router.get("/results", tags=["records"], response_model=list[StoredResult], responses=ERRORS)
    async def own_results(
        caller: Reader, limit: Annotated[int, Query(ge=1, le=MAX_OWN_RESULTS)] = 20
    ) -> list[StoredResult]:
        """The caller's own newest results, newest first (anyone's stay behind their ids)."""
        found = await trail.results_by(caller.subject, limit)
        await audited(caller, AuditAction.RESULT_READ, "inference", own_recent=len(found))
        return found

    @router.get("/audit", tags=["records"], response_model=AuditPage, responses=ERRORS)
    async def audit(
        caller: Auditor,
        after_seq: Annotated[
            int, Query(ge=0, le=MAX_SEQ, description="Entries after this seq.")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_READ)] = 100,
        action: Annotated[
            AuditAction | None, Query(description="Only entries of this action.")
        ] = None,
        actor: Annotated[
            str | None,
            Query(
                max_length=MAX_SUBJECT_CHARS,
                pattern=r"^[^\x00-\x1f\x7f]+$",
                description="Only entries by this actor (a token's subject).",
            ),
        ] = None,
    ) -> AuditPage:
        """Audit entries oldest first, each with its place in the hash chain; filtered by
        action and actor when asked (``next_after_seq`` then pages the filtered entries)."""
        entries = await trail.entries(after_seq, limit, action, actor)
        filters = {"filter_action": action and action.value, "filter_actor": actor}
        await audited(
            caller,
            AuditAction.AUDIT_READ,
            "audit",
            after_seq=after_seq,
            returned=len(entries),
            **{name: value for name, value in filters.items() if value is not None},
        )
        last = entries[-1].seq if len(entries) == limit else None
        return AuditPage(entries=entries, next_after_seq=last)

    @router.get(
        "/audit/verify", tags=["records"], response_model=ChainVerification, responses=ERRORS
    )
    async def verify(caller: Auditor, full: bool = False) -> ChainVerification:
        """Recompute the hash chain and hold it to the signed checkpoints, the results and
        the registry's tables; from the last verification on unless ``full``."""
        verification = await trail.verify(full)
        await audited(
            caller,
            AuditAction.AUDIT_VERIFY,
            "audit",
            valid=verification.valid,
            first_bad_seq=verification.first_bad_seq,
            full=full,
        )
        return verification

    return router
