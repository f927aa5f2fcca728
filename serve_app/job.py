"""A job: one image as the platform accepted it, and what becomes of it (its outcome)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from serve_app.auth.tokens import Principal
from serve_app.codecs.types import DecodedImage, EncodedImage, TensorInput
from serve_app.errors import MedAIError
from serve_app.records.inference import InferenceRecord


@dataclass(frozen=True)
class Job:
    """One image to classify, as accepted: the id its answer will carry, who asked, when.

    Every field but ``image`` ends up in the ``InferenceRecord`` the pipeline builds.
    """

    image: DecodedImage | EncodedImage | TensorInput
    inference_id: str
    requested_by: str
    role: str | None
    accepted_at: float
    """``time.time()`` at acceptance: the record's latency spans processes."""
    model: str | None = None
    """As the client asked (``None``: the default model)."""
    patient_ref: str | None = None
    """The patient's pseudonym; also what a sticky route keys on."""
    batch_id: str | None = None
    shadow_of: InferenceRecord | None = None
    """For a route's shadow copy (never a client's request): the answer it runs beside."""

    @classmethod
    def accept(
        cls,
        image: DecodedImage | EncodedImage | TensorInput,
        caller: Principal,
        model: str | None = None,
        patient_ref: str | None = None,
        batch_id: str | None = None,
    ) -> Job:
        """A client's image, given its inference id now."""
        return cls(
            image=image,
            inference_id=str(uuid.uuid4()),
            requested_by=caller.subject,
            role=caller.role,
            accepted_at=time.time(),
            model=model,
            patient_ref=patient_ref,
            batch_id=batch_id,
        )

    def copy_for(
        self, ref: str, decoded: DecodedImage | TensorInput, answer: InferenceRecord
    ) -> Job:
        """A shadow copy of this job for version ``ref``, of the image already decoded."""
        return replace(
            self, image=decoded, inference_id=str(uuid.uuid4()), accepted_at=time.time(),
            model=ref, shadow_of=answer,
        )  # fmt: skip


Outcome = InferenceRecord | MedAIError
"""A client's error is a value here, so one bad image never fails its neighbours."""
