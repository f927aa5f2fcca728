"""The README's configuration reference stays true to the settings object."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from serve_app.settings import REPO_ROOT, Settings


def env_names(model: type[BaseModel], prefix: str = "MEDAI_") -> Iterator[str]:
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from env_names(field.annotation, f"{prefix}{name.upper()}__")
        else:
            yield prefix + name.upper()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [name for name in env_names(Settings) if f"`{name}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"


def test_every_setting_has_a_description() -> None:
    def undocumented(model: type[BaseModel]) -> Iterator[str]:
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from undocumented(field.annotation)
            elif not field.description:
                yield f"{model.__name__}.{name}"

    assert not list(undocumented(Settings))


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make test" in readme and "\nmake test\n" in ci
