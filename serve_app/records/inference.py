"""One image's answer: built once, where the model's output is interpreted.

The HTTP answer (``schemas.infer.InferResponse.of``), the stored row
(``audit.store``) and the audit entry (``AuditEvent.inference``) are each derived from
this record in one place. Names are the stored row's; the one wire name that differs
is mapped in ``schemas.infer.WIRE_NAMES``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from serve_app.logs import PSEUDONYM


@dataclass(frozen=True, kw_only=True)
class Interpretation:
    """A model's output row read by its decision rule (``runtime.postprocess.interpret``)."""

    outputs: Sequence[float]
    """The model's raw output row."""
    confidence: float
    prediction: str
    threshold: float
    positive: bool | None = None
    """Whether the model's positive class won (a segmentation or detection model: whether it
    found anything); ``None`` for a classifier without a positive class."""
    findings: Mapping[str, Any] | None = None
    """A segmentation's masks or a detection's boxes on the source image (JSON-able, with
    ``kind``); ``None`` for a classifier. README "Model kinds" documents the shape."""


@dataclass(frozen=True, kw_only=True)
class InferenceRecord(Interpretation):
    """An interpretation with everything that identifies it: id, model, caller, route."""

    inference_id: str
    """Minted when the request was accepted."""
    model_name: str
    model_version: str
    latency_ms: float
    """From the request's acceptance to this record (wall clock: it spans processes)."""
    requested_by: str = "anonymous"
    """Token ``sub`` of who asked."""
    role: str | None = None
    labels: Sequence[str] = ()
    patient_ref: str | None = None
    """``Pseudonymizer`` output; a clear patient id is refused."""
    batch_id: str | None = None
    frame: int | None = None
    """DICOM frame used (0-based)."""
    frames: int | None = None
    endpoint: str | None = None
    """The A/B route that chose this model version, if one did."""
    arm: str | None = None
    """``name:version`` the route chose (or the shadow version that ran)."""
    shadow_of: str | None = None
    """For a shadow copy: the ``inference_id`` whose answer it ran beside."""
    model_sha256: str | None = None
    """SHA-256 of the model file that answered: a DICOM result names the algorithm by it."""
    source: Mapping[str, Any] | None = None
    """A DICOM input's UIDs and geometry (``codecs.dicom_reference``), which a DICOM result
    refers to; ``None`` for other inputs."""

    def __post_init__(self) -> None:
        # NOTE: the message never echoes the value: it may be a clear patient id.
        if self.patient_ref is not None and not PSEUDONYM.fullmatch(self.patient_ref):
            raise ValueError("patient_ref must be a pseudonym (pt_ + 20 hex digits)")
