"""The KubeRay manifests serve exactly what serve_config.yaml serves, and hold no secret."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

import ray
import yaml
from ray.serve.schema import ServeDeploySchema

from medai_cli.main import serve_env
from serve_app.settings import REPO_ROOT

SECRET_WORDS = ("SECRET", "KEY", "PASSWORD", "TOKEN")


def documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((REPO_ROOT / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def rayservice() -> dict[str, Any]:
    (service,) = [d for d in documents() if d["kind"] == "RayService"]
    return service


def serve_config_v2() -> dict[str, Any]:
    return yaml.safe_load(rayservice()["spec"]["serveConfigV2"])


def containers() -> Iterator[dict[str, Any]]:
    cluster = rayservice()["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        yield from group["template"]["spec"]["containers"]


def env_vars(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env":
                yield from value
            else:
                yield from env_vars(value)
    elif isinstance(node, list):
        for item in node:
            yield from env_vars(item)


def test_serve_config_v2_equals_serve_config_yaml_but_host() -> None:
    embedded = serve_config_v2()
    local = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    assert embedded["http_options"].pop("host") == "0.0.0.0"
    local["http_options"].pop("host")
    assert embedded == local


def test_serve_config_v2_is_a_valid_serve_deploy_config() -> None:
    ServeDeploySchema.model_validate(serve_config_v2())


def test_versions_match_the_installed_ray_and_the_project() -> None:
    assert rayservice()["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert {c["image"] for c in containers()} == {f"ghcr.io/medai-flow/medai-flow:{version}"}


def test_every_container_gets_the_settings_and_the_secret_reference() -> None:
    for container in containers():
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["MEDAI_ENVIRONMENT"] == "production"
        assert env["MEDAI_MODEL_STORE"] == "/models"
        assert {"secretRef": {"name": "medai-secrets", "optional": False}} in container["envFrom"]


def test_every_container_runs_ray_as_medai_serve_does() -> None:
    for container in containers():
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert serve_env(high_throughput=True).items() <= env.items()


def test_no_literal_secret_in_the_manifests() -> None:
    for var in env_vars(documents()):
        if any(word in var["name"].upper() for word in SECRET_WORDS):
            assert "value" not in var, f"{var['name']} has a literal value; use a Secret"
