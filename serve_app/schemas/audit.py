"""Wire shapes of stored results and the audit trail (read from rows by attribute)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.infer import ResultFields


class _FromRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class StoredResult(_FromRow, ResultFields):
    batch_id: str | None
    requested_by: str = Field(description="The `sub` of the token that asked.")
    patient_ref: str | None = Field(description="Pseudonym of the patient id, never the id.")
    confidence: float
    created_at: datetime
    positive: bool | None = Field(None, description="Whether the positive class won.")
    shadow_of: str | None = Field(
        None, description="A shadow copy: the inference it ran beside (never returned)."
    )
    model_sha256: str | None = Field(None, description="SHA-256 of the model file that answered.")
    source: dict[str, Any] | None = Field(
        None,
        description="A DICOM input's Study, Series and SOP Instance UIDs, SOP class and"
        " geometry, which `GET /results/{inference_id}/dicom` refers to; null otherwise.",
    )


class AuditRecord(_FromRow):
    seq: int
    timestamp: datetime
    actor: str
    role: str | None
    action: str
    object_type: str
    object_id: str | None
    model_version: str | None
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


class AuditPage(BaseModel):
    entries: list[AuditRecord]
    next_after_seq: int | None = Field(
        description="Pass as `after_seq` for the next page; null when this page is the last."
    )


class ChainVerification(_FromRow):
    valid: bool
    entries: int = Field(description="Entries read.")
    head_hash: str = Field(description="Stored hash of the newest entry.")
    first_bad_seq: int | None = Field(description="First altered, missing or misplaced seq.")
    reason: str | None = None
    checkpoint_seq: int | None = Field(
        None, description="Seq of the newest signed checkpoint the chain was held to."
    )
    unsigned_entries: int = Field(
        0, description="Entries after the newest checkpoint, protected by the chain alone."
    )
    unsigned_since: datetime | None = Field(None, description="Time of the oldest of them.")
    reanchored_at: list[int] = Field(
        default_factory=list,
        description="Seqs where an operator re-anchored the trail (`medai audit reanchor`);"
        " the `audit.reanchor` entry there says who and why.",
    )
    incremental: bool = Field(
        False,
        description="Went on from the last verification (the entries and checkpoints written"
        " since, and the unchanged last entry and checkpoint it proved); `full=true` reads"
        " everything again.",
    )
