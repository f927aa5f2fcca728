"""The content-addressed model store.

Layout (see ``model_store/README.md``)::

    model_store/blobs/sha256/<hex>.onnx   immutable model files, named by their hash
    model_store/catalog.json              name:version -> spec (hash, tensors, metadata)

Readers verify the SHA-256 of a blob before using it: a file changed on disk
is refused, never served.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from http import HTTPStatus
from pathlib import Path

from serve_app.catalog.spec import ModelSpec
from serve_app.errors import MedAIError, NotFound


class TamperedModel(MedAIError):
    """A model file's bytes no longer match the hash it was registered under."""

    status = HTTPStatus.CONFLICT
    slug = "model-integrity"
    title = "Model file failed its integrity check"


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.catalog_path = self.root / "catalog.json"

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / f"{sha256}.onnx"

    def specs(self) -> list[ModelSpec]:
        """Every registered version, oldest first."""
        if not self.catalog_path.exists():
            return []
        entries = json.loads(self.catalog_path.read_text())["models"]
        return [ModelSpec.model_validate(e) for e in entries]

    def resolve(self, name: str, version: str | None = None) -> ModelSpec:
        """The spec of ``name:version``, or of the newest version of ``name``."""
        matches = [s for s in self.specs() if s.name == name]
        if version is not None:
            matches = [s for s in matches if s.version == version]
        if not matches:
            ref = f"{name}:{version}" if version else name
            raise NotFound(f"model {ref} is not registered", field="model", rule="registered")
        return matches[-1]

    def starting(self, name: str, version: str | None = None) -> ModelSpec:
        """What a served model starts with: ``name:version``, or without a version the
        first version the store held for ``name``. Not the newest: that may be an upload
        still in development, and the registry decides what serves after start."""
        if version is not None:
            return self.resolve(name, version)
        first = next((s for s in self.specs() if s.name == name), None)
        return first if first is not None else self.resolve(name)

    def by_hash(self, sha256: str) -> ModelSpec:
        """The spec of a version stored under this file hash (any one, if several share it)."""
        for spec in self.specs():
            if spec.sha256 == sha256:
                return spec
        raise NotFound(
            f"no model file {sha256[:12]} is registered", field="model", rule="registered"
        )

    def add(self, data: bytes, spec: ModelSpec) -> ModelSpec:
        """Store a blob and record its spec (replacing an entry of the same name:version)."""
        if hashlib.sha256(data).hexdigest() != spec.sha256:
            raise ValueError("spec.sha256 does not match the data")
        self.blobs.mkdir(parents=True, exist_ok=True)
        path = self.blob_path(spec.sha256)
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != spec.sha256:
            _atomic_write(path, data)  # new, or repairing a damaged blob
        specs = self.specs()
        refs = [s.ref for s in specs]
        if spec.ref in refs:  # keep its place: re-registering must not make it "newest"
            specs[refs.index(spec.ref)] = spec
        else:
            specs.append(spec)
        catalog = {"models": [s.model_dump(mode="json") for s in specs]}
        _atomic_write(self.catalog_path, json.dumps(catalog, indent=2).encode())
        return spec

    def remove(self, ref: str) -> None:
        """Drop ``name:version``'s catalog entry (a registration whose record failed), and
        its blob unless another entry shares it."""
        specs = self.specs()
        gone = [s for s in specs if s.ref == ref]
        kept = [s for s in specs if s.ref != ref]
        catalog = {"models": [s.model_dump(mode="json") for s in kept]}
        _atomic_write(self.catalog_path, json.dumps(catalog, indent=2).encode())
        for spec in gone:
            if all(s.sha256 != spec.sha256 for s in kept):
                self.blob_path(spec.sha256).unlink(missing_ok=True)

    def read_verified(self, spec: ModelSpec) -> bytes:
        """The model's bytes, after checking they still hash to ``spec.sha256``."""
        try:
            data = self.blob_path(spec.sha256).read_bytes()
        except FileNotFoundError:
            raise TamperedModel(
                f"model file for {spec.ref} is missing", field="model", rule="integrity"
            ) from None
        if hashlib.sha256(data).hexdigest() != spec.sha256:
            raise TamperedModel(
                f"model file for {spec.ref} does not match its SHA-256",
                field="model",
                rule="integrity",
            )
        return data


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; replicas may run as another user
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
