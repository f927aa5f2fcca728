from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from serve_app.settings import REPO_ROOT, LimitsSettings, ModelConfig, RuntimeSettings, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MEDAI_ variable of the developer's shell leaks into these tests."""
    for key in list(os.environ):
        if key.upper().startswith("MEDAI_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    settings = Settings()

    assert settings.environment == "development"
    assert settings.model_store == REPO_ROOT / "model_store"
    assert [m.name for m in settings.models] == ["chest-xray-demo", "derm-demo"]
    assert settings.default_model == "chest-xray-demo"
    assert settings.limits == LimitsSettings()
    assert (settings.limits.min_side, settings.limits.max_side) == (64, 2048)
    assert settings.limits.max_body_bytes == 50 * 1024 * 1024
    assert settings.limits.max_batch_images == 100
    assert settings.runtime == RuntimeSettings(
        device="auto", intra_op_threads=0, inter_op_threads=1
    )


def test_model_config_defaults() -> None:
    model = ModelConfig(name="m")

    assert model.version is None
    assert model.max_batch_size == 16
    assert model.batch_wait_timeout_s == 0.0
    assert model.max_concurrent_batches == 1


def test_nested_env_variable_overrides_one_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_LIMITS__MAX_SIDE", "4096")

    limits = Settings().limits

    assert limits.max_side == 4096
    assert limits.min_side == 64  # the rest of the group keeps its defaults


def test_env_variables_override_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDAI_DEFAULT_MODEL", "derm-demo")
    monkeypatch.setenv("MEDAI_MODEL_STORE", str(tmp_path))
    monkeypatch.setenv("MEDAI_RUNTIME__DEVICE", "cpu")
    monkeypatch.setenv("MEDAI_ENVIRONMENT", "production")

    settings = Settings()

    assert settings.default_model == "derm-demo"
    assert settings.model_store == tmp_path
    assert settings.runtime.device == "cpu"
    assert settings.environment == "production"


def test_env_variable_holds_json_for_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_MODELS", json.dumps([{"name": "a", "version": "2"}]))
    monkeypatch.setenv("MEDAI_DEFAULT_MODEL", "a")

    settings = Settings()

    assert settings.models == [ModelConfig(name="a", version="2")]
    assert settings.model("a") == ModelConfig(name="a", version="2")


def test_init_arguments_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_DEFAULT_MODEL", "derm-demo")
    monkeypatch.setenv("MEDAI_LIMITS__MAX_SIDE", "4096")

    settings = Settings(default_model="chest-xray-demo", limits={"max_side": 1024})

    assert settings.default_model == "chest-xray-demo"
    assert settings.limits.max_side == 1024


def test_env_value_of_the_wrong_type_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_LIMITS__MAX_SIDE", "large")

    with pytest.raises(ValidationError):
        Settings()


def test_model_lookup() -> None:
    settings = Settings()

    assert settings.model("derm-demo") == ModelConfig(name="derm-demo")
    assert settings.model("absent") is None


def test_duplicate_model_names_are_rejected() -> None:
    with pytest.raises(ValidationError, match="duplicate"):
        Settings(models=[{"name": "a"}, {"name": "a", "version": "2"}], default_model="a")


def test_default_model_must_be_served() -> None:
    with pytest.raises(ValidationError, match="default_model 'other'"):
        Settings(models=[{"name": "a"}], default_model="other")


def test_default_model_from_env_must_be_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_DEFAULT_MODEL", "other")

    with pytest.raises(ValidationError, match="is not among models"):
        Settings()


def test_unknown_top_level_key_is_forbidden() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Settings(max_side=4096)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_batch_size", 0),
        ("max_batch_size", 1025),
        ("batch_wait_timeout_s", -0.1),
        ("batch_wait_timeout_s", 1.5),
        ("max_concurrent_batches", 0),
        ("max_concurrent_batches", 65),
    ],
)
def test_model_config_bounds(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        ModelConfig(name="m", **{field: value})


@pytest.mark.parametrize(
    "overrides",
    [
        {"limits": {"max_sidee": 4096}},
        {"runtime": {"devise": "cpu"}},
        {
            "models": [{"name": "chest-xray-demo", "max_batch": 8}],
            "default_model": "chest-xray-demo",
        },
    ],
    ids=["limits", "runtime", "models"],
)
def test_misspelt_nested_key_is_forbidden(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="extra"):
        Settings(**overrides)


def test_misspelt_nested_env_variable_is_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAI_LIMITS__MAX_SIDEE", "4096")

    with pytest.raises(ValidationError, match="extra"):
        Settings()


def test_settings_objects_do_not_share_nested_groups() -> None:
    assert Settings().limits is not Settings().limits
