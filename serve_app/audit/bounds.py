"""What an audit event must satisfy before it is linked into the chain.

Group commit puts many callers' events in one transaction, so an event the database
(or the canonical JSON hashed into the chain) would refuse must be refused here, as
that caller's own 422, before it can cost the others their commit. Column sizes are
read from the tables themselves, so a schema change cannot leave these checks behind.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tortoise.fields import CharField
from tortoise.models import Model

from serve_app.audit.events import AuditEvent
from serve_app.canonical import canonical_json
from serve_app.errors import InvalidInput
from serve_app.records.model import ModelVersionRecord, StatusChange
from serve_app.storage.models import AuditLog, InferenceResult, ModelVersion, Route

ENTRY_FIELDS = ("actor", "role", "action", "object_type", "object_id", "model_version")
RESULT_FLOATS = ("confidence", "threshold", "latency_ms")
MODEL_FLOATS = ("inference_latency_ms", "confidence_threshold")


def max_length(table: type[Model], column: str) -> int:
    """The size of a ``CharField`` column of ``table``."""
    field = table._meta.fields_map[column]
    assert isinstance(field, CharField), f"{table.__name__}.{column} is not a CharField"
    return int(field.max_length)


def _fits(table: type[Model], values: Mapping[str, Any]) -> None:
    """Every text column of ``table`` among ``values`` holds text that fits it."""
    columns = table._meta.fields_map
    for column, value in values.items():
        if value is None or not isinstance(columns.get(column), CharField):
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{column} is not text", field=column, rule="type")
        if len(value) > (limit := max_length(table, column)):
            # NOTE: the value is never echoed: it may be attacker-chosen, or PHI.
            raise InvalidInput(
                f"{column} is longer than {limit} characters", field=column, rule="max-length"
            )


def _finite(values: Mapping[str, Any], columns: Iterable[str]) -> None:
    for column in columns:
        value = values.get(column)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{column} is not a number", field=column, rule="type")
        if not math.isfinite(value):
            raise InvalidInput(f"{column} is not a finite number", field=column, rule="finite")


def _json(value: Any, field: str) -> None:
    try:
        canonical_json(value)
    except ValueError:
        raise InvalidInput(
            f"{field} holds a number that is not finite", field=field, rule="finite"
        ) from None
    except TypeError:
        raise InvalidInput(
            f"{field} holds a value JSON cannot hold", field=field, rule="type"
        ) from None


def check_event(event: AuditEvent) -> None:
    """``InvalidInput`` naming the field and rule unless ``event`` fits the tables."""
    _fits(AuditLog, {column: getattr(event, column) for column in ENTRY_FIELDS})
    if (result := event.result) is not None:
        _fits(InferenceResult, vars(result) | {"requested_by": event.actor})
        _finite(vars(result), RESULT_FLOATS)
        outputs = result.outputs
        if not isinstance(outputs, Sequence) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in outputs
        ):
            raise InvalidInput("outputs is not a list of numbers", field="outputs", rule="type")
        if not all(math.isfinite(v) for v in outputs):
            raise InvalidInput("outputs holds a number that is not finite", "outputs", "finite")
        for name in ("findings", "source"):
            if (value := getattr(result, name)) is not None:
                _json(dict(value), name)
    _json(dict(event.details), "details")  # after the result, whose fields it repeats
    if isinstance(event.model, ModelVersionRecord | StatusChange):
        _fits(ModelVersion, vars(event.model))
        _finite(vars(event.model), MODEL_FLOATS)
    if (route := event.route) is not None:
        _fits(Route, {"endpoint": route.endpoint, "updated_by": event.actor})
        if route.config is not None:
            _json(dict(route.config), "config")


def refusal(events: Sequence[AuditEvent]) -> InvalidInput | None:
    """The first of ``events``' problems, or ``None`` when all of them may be linked."""
    try:
        for event in events:
            check_event(event)
    except InvalidInput as error:
        return error
    return None
