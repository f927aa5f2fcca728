"""A registered model version's regulatory status (the transition table is the registry's)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class ModelStatus(StrEnum):
    """Regulatory status of a registered model version."""

    DEVELOPMENT = "development"
    VALIDATION = "validation"
    PRODUCTION = "production"
    RETIRED = "retired"


class Version(Protocol):
    """A registered version with its status: a table row, a record or a wire shape."""

    @property
    def model_name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def status(self) -> ModelStatus: ...
