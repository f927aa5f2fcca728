"""The tables. Timestamps are timezone-aware UTC; patients appear only as pseudonyms."""

from __future__ import annotations

import json
from typing import Any

from tortoise import fields
from tortoise.exceptions import ValidationError
from tortoise.models import Model
from tortoise.validators import Validator

from serve_app.canonical import canonical_json
from serve_app.catalog.status import ModelStatus
from serve_app.logs import PSEUDONYM

SCHEMA_VERSION = 4
"""Bumped with every change to these tables, together with a step in ``MIGRATIONS``."""


class _IsPseudonym(Validator):
    def __call__(self, value: Any) -> None:
        # NOTE: the message never echoes the value: it may be a clear patient id.
        if value is not None and not PSEUDONYM.fullmatch(value):
            raise ValidationError("patient_ref must be a pseudonym (pt_ + 20 hex digits)")


class CanonicalJSONField(fields.JSONField):
    """JSON stored as canonical text, read back exactly as it was hashed.

    NOTE: PostgreSQL's ``jsonb`` rewrites numbers (``1e300`` comes back as an integer,
    ``-0.0`` as ``0``), which would break a hash over the value; ``json`` keeps the text.
    """

    class _db_postgres:
        SQL_TYPE = "JSON"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(encoder=canonical_json, decoder=json.loads, **kwargs)


class ModelVersion(Model):
    id = fields.IntField(primary_key=True)
    model_name = fields.CharField(max_length=64)
    version = fields.CharField(max_length=64)
    status = fields.CharEnumField(ModelStatus, max_length=16, default=ModelStatus.DEVELOPMENT)
    file_path = fields.CharField(max_length=1024)
    file_hash = fields.CharField(max_length=64, description="SHA-256 of the file, hex")
    file_size_bytes = fields.BigIntField()
    input_shape: Any = fields.JSONField(description="e.g. [null, 1, 256, 256]")
    output_shape: Any = fields.JSONField()
    inference_latency_ms = fields.FloatField(null=True)
    clinical_domain = fields.CharField(max_length=64, null=True)
    confidence_threshold = fields.FloatField(null=True)
    fda_submission_id = fields.CharField(max_length=64, null=True)
    iso_certification = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "model_versions"
        unique_together = (("model_name", "version"),)


class InferenceResult(Model):
    inference_id = fields.CharField(max_length=64, primary_key=True)
    batch_id = fields.CharField(max_length=64, null=True, db_index=True)
    model_name = fields.CharField(max_length=64)
    model_version = fields.CharField(max_length=64)
    requested_by = fields.CharField(max_length=128, db_index=True, description="token sub")
    patient_ref = fields.CharField(
        max_length=64,
        null=True,
        db_index=True,
        validators=[_IsPseudonym()],
        description="pseudonym, never a clear id",
    )
    outputs: Any = CanonicalJSONField()
    confidence = fields.FloatField()
    prediction = fields.CharField(max_length=128)
    threshold = fields.FloatField()
    latency_ms = fields.FloatField()
    created_at = fields.DatetimeField()
    # Schema 2: A/B routing; null on results no route chose. NOTE: columns a migration adds
    # carry no description: on PostgreSQL tortoise comments on them (COMMENT ON COLUMN)
    # while making tables, before the migration has added them.
    positive = fields.BooleanField(null=True)  # the model's positive class won
    endpoint = fields.CharField(max_length=64, null=True)  # indexed by LATE_INDEXES
    arm = fields.CharField(max_length=160, null=True)  # name:version the route chose
    shadow_of = fields.CharField(max_length=64, null=True)  # inference_id it ran beside
    # Schema 3: a segmentation's masks or a detection's boxes (null for a classifier); the
    # model file's hash; a DICOM input's UIDs and geometry (null for other inputs).
    findings: Any = CanonicalJSONField(null=True)
    model_sha256 = fields.CharField(max_length=64, null=True)
    source: Any = CanonicalJSONField(null=True)

    class Meta:
        table = "inference_results"


class AuditLog(Model):
    """One link of the hash chain; ``seq`` runs 1, 2, 3, ... with no gaps."""

    seq = fields.BigIntField(primary_key=True, generated=False)
    timestamp = fields.DatetimeField()
    actor = fields.CharField(max_length=128)
    role = fields.CharField(max_length=32, null=True)
    action = fields.CharField(max_length=64, db_index=True)
    object_type = fields.CharField(max_length=64)
    object_id = fields.CharField(max_length=128, null=True, db_index=True)
    model_version = fields.CharField(max_length=160, null=True, description="name:version")
    details: Any = CanonicalJSONField()
    prev_hash = fields.CharField(max_length=64)
    entry_hash = fields.CharField(max_length=64, unique=True)
    # Schema 4: the event's delivery key (``AuditEvent.event_id``), outside the hash; null
    # on entries older than schema 4. Unique through LATE_INDEXES.
    event_id = fields.CharField(max_length=32, null=True)

    class Meta:
        table = "audit_log"


class Route(Model):
    """An endpoint's A/B route (``serve_app.catalog.routes.RouteConfig`` as JSON)."""

    endpoint = fields.CharField(max_length=64, primary_key=True)
    config: Any = CanonicalJSONField()
    updated_by = fields.CharField(max_length=128, description="token sub")
    updated_at = fields.DatetimeField()

    class Meta:
        table = "routes"


class SchemaVersion(Model):
    """One row per schema version applied to this database."""

    version = fields.IntField(primary_key=True, generated=False)
    applied_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "schema_version"
