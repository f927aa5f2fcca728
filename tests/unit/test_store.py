from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from serve_app.catalog.spec import ModelSpec
from serve_app.catalog.store import ModelStore, TamperedModel
from serve_app.errors import NotFound
from serve_app.runtime.examine import inspect_model
from tests.unit.onnx_builders import tiny_classifier


def model(threshold: float = 0.85, height: int = 64) -> bytes:
    """Distinct thresholds or heights give distinct files (and hashes)."""
    return tiny_classifier([None, 3, height, 64], metadata={"medai.threshold": threshold})


def add(store: ModelStore, name: str, version: str, data: bytes) -> ModelSpec:
    return store.add(data, inspect_model(data, name, version))


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "model_store")


def test_empty_store_has_no_specs(store: ModelStore) -> None:
    assert store.specs() == []
    with pytest.raises(NotFound):
        store.resolve("chest")


def test_add_then_resolve_by_name(store: ModelStore) -> None:
    spec = add(store, "chest", "1", model())

    assert store.resolve("chest") == spec
    assert store.specs() == [spec]


def test_resolve_without_version_gives_the_newest(store: ModelStore) -> None:
    add(store, "chest", "1", model(0.5))
    newest = add(store, "chest", "2", model(0.6))
    add(store, "derm", "7", model(0.7))

    assert store.resolve("chest") == newest


def test_resolve_an_exact_version(store: ModelStore) -> None:
    first = add(store, "chest", "1", model(0.5))
    add(store, "chest", "2", model(0.6))

    assert store.resolve("chest", "1") == first
    assert store.resolve("chest", "1").metadata.threshold == 0.5


@pytest.mark.parametrize(("name", "version"), [("absent", None), ("chest", "9"), ("derm", "1")])
def test_unregistered_model_is_not_found(store: ModelStore, name: str, version: str | None) -> None:
    add(store, "chest", "1", model())

    with pytest.raises(NotFound) as info:
        store.resolve(name, version)

    assert (info.value.field, info.value.rule) == ("model", "registered")


def test_specs_survive_a_new_store_object(store: ModelStore) -> None:
    spec = add(store, "chest", "1", model())

    assert ModelStore(store.root).resolve("chest", "1") == spec


def test_blob_is_named_by_its_sha256(store: ModelStore) -> None:
    data = model()
    spec = add(store, "chest", "1", data)
    digest = hashlib.sha256(data).hexdigest()

    path = store.root / "blobs" / "sha256" / f"{digest}.onnx"
    assert spec.sha256 == digest
    assert store.blob_path(digest) == path
    assert path.read_bytes() == data
    assert json.loads(store.catalog_path.read_text())["models"][0]["sha256"] == digest


def test_readding_the_same_ref_replaces_the_entry(store: ModelStore) -> None:
    add(store, "chest", "1", model(0.5))
    replacement = add(store, "chest", "1", model(0.9))

    assert [s.ref for s in store.specs()] == ["chest:1"]
    assert store.resolve("chest", "1") == replacement
    assert store.read_verified(replacement) == model(0.9)


def test_readding_an_old_version_keeps_the_newest(store: ModelStore) -> None:
    add(store, "chest", "1", model(0.5))
    add(store, "chest", "2", model(0.6))
    add(store, "chest", "1", model(0.55))

    assert store.resolve("chest").version == "2"


def test_same_file_under_two_refs_is_stored_once(store: ModelStore) -> None:
    data = model()
    add(store, "chest", "1", data)
    add(store, "chest-copy", "1", data)

    assert len(list(store.blobs.iterdir())) == 1
    assert [s.ref for s in store.specs()] == ["chest:1", "chest-copy:1"]


def test_read_verified_returns_the_bytes(store: ModelStore) -> None:
    data = model()
    spec = add(store, "chest", "1", data)

    assert store.read_verified(spec) == data


def test_one_flipped_byte_is_tampering(store: ModelStore) -> None:
    spec = add(store, "chest", "1", model())
    path = store.blob_path(spec.sha256)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))

    with pytest.raises(TamperedModel, match="does not match its SHA-256"):
        store.read_verified(spec)


def test_missing_blob_is_tampering(store: ModelStore) -> None:
    spec = add(store, "chest", "1", model())
    store.blob_path(spec.sha256).unlink()

    with pytest.raises(TamperedModel, match="missing"):
        store.read_verified(spec)


def test_adding_again_repairs_a_tampered_blob(store: ModelStore) -> None:
    data = model()
    spec = add(store, "chest", "1", data)
    store.blob_path(spec.sha256).write_bytes(b"corrupted")

    store.add(data, spec)

    assert store.read_verified(spec) == data


def test_spec_whose_hash_does_not_match_the_data_is_refused(store: ModelStore) -> None:
    spec = inspect_model(model(0.5), "chest", "1")

    with pytest.raises(ValueError, match="sha256"):
        store.add(model(0.6), spec)

    assert store.specs() == []
    assert not store.blobs.exists() or not any(store.blobs.iterdir())


def test_files_are_readable_by_other_users(store: ModelStore) -> None:
    spec = add(store, "chest", "1", model())

    assert store.blob_path(spec.sha256).stat().st_mode & 0o777 == 0o644
    assert store.catalog_path.stat().st_mode & 0o777 == 0o644


def test_no_temporary_files_are_left_behind(store: ModelStore) -> None:
    add(store, "chest", "1", model(0.5))
    add(store, "chest", "2", model(0.6))

    leftovers = [p.name for p in store.root.rglob(".*")]
    assert leftovers == []


def test_a_served_model_starts_with_the_first_version_not_a_later_upload(
    store: ModelStore,
) -> None:
    first = add(store, "chest", "1", model(0.5))
    later = add(store, "chest", "2-dev", model(0.6))

    assert store.starting("chest") == first
    assert store.starting("chest", "2-dev") == later
    assert store.resolve("chest") == later  # resolve keeps meaning the newest
