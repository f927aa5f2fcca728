"""What the registry reads, assumes or refuses in a model file, each with its fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from serve_app.catalog.spec import ModelSpec, metadata_error
from serve_app.errors import InvalidInput


class Verdict(StrEnum):
    OK = "ok"
    """What the registry reads from the file, said back."""
    GUESSED = "guessed"
    """Not stated in the file: the registry assumes it, and serving depends on it."""
    REFUSED = "refused"
    """The registry refuses the file: a 422 naming ``file`` and the finding's rule."""


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    rule: str
    """The rule a refusal's 422 names (``onnx``, ``model-input``, ``model-metadata``, ...)."""
    detail: str
    fix: str = ""
    key: str = ""
    """The ``medai.*`` metadata key at fault, when one is; the 422 names it as ``key``."""

    def error(self) -> InvalidInput:
        if self.key:
            return metadata_error(self.detail, self.key, self.rule)
        return InvalidInput(self.detail, field="file", rule=self.rule)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "rule": self.rule,
            "detail": self.detail,
            "fix": self.fix,
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        verdict, rule, detail = Verdict(data["verdict"]), data["rule"], data["detail"]
        return cls(verdict, rule, detail, data.get("fix", ""), data.get("key", ""))


@dataclass
class Examination:
    """The findings about one file, in the order the registry meets them; its spec when
    it would register."""

    findings: list[Finding] = field(default_factory=list)
    spec: ModelSpec | None = None
    latency_ms: float | None = None
    """Wall time of the examination, the zero-input run included (child process only)."""

    @property
    def refusals(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict is Verdict.REFUSED]

    def add(self, verdict: Verdict, rule: str, detail: str, fix: str = "", key: str = "") -> None:
        self.findings.append(Finding(verdict, rule, detail, fix, key))

    def refuse(self, error: InvalidInput, fix: str) -> None:
        key = next((str(e["key"]) for e in error.errors if "key" in e), "")
        self.add(Verdict.REFUSED, error.rule or "onnx", error.detail, fix, key)
