"""A segmentation's masks and a detection's boxes are stored with the result, read back as
they were hashed, and a mask altered in the database breaks verification at its entry."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from serve_app.audit.events import AuditEvent
from serve_app.audit.store import RESULT_DIGEST, AuditStore
from serve_app.runtime.kinds import rle
from serve_app.storage import Database
from tests.storage.audit_builders import clock, record, sql, verified


def segmentation() -> dict[str, Any]:
    mask = np.zeros((64, 96), bool)
    mask[10:20, 30:50] = True
    entry = {"label": "lesion", "pixel_count": 200, "area_mm2": 50.0, "mask": rle.encode(mask)}
    return {"kind": "segmentation", "height": 64, "width": 96, "classes": [entry]}


def detection() -> dict[str, Any]:
    box = {"label": "nodule", "score": 0.9, "box": [1.5, 2.0, 30.25, 40.0], "box_mm": None}
    return {"kind": "detection", "height": 64, "width": 96, "boxes": [box]}


def test_findings_are_stored_hashed_and_tamper_evident(with_db: Any) -> None:
    async def scenario(db: Database) -> tuple[Any, ...]:
        store = AuditStore(db, clock())
        events = [
            AuditEvent.inference(record(1, findings=segmentation())),
            AuditEvent.inference(record(2, findings=detection())),
            AuditEvent.inference(record(3)),  # a classifier's: no findings
        ]
        rows = await store.append(events)
        stored = [await store.result(f"inf-{i}") for i in (1, 2, 3)]
        before = await verified(store)
        altered = segmentation()
        altered["classes"][0]["mask"]["counts"][1] += 1  # one pixel more in the mask
        await sql(
            db,
            "UPDATE inference_results SET findings = ? WHERE inference_id = 'inf-1'",
            json.dumps(altered),
        )
        return rows, stored, before, await verified(store)

    rows, stored, before, after = with_db(scenario)
    assert [r.findings if r else "missing" for r in stored] == [segmentation(), detection(), None]
    assert all(RESULT_DIGEST in row.details for row in rows)
    assert before.valid
    assert (after.valid, after.first_bad_seq) == (False, 1)
