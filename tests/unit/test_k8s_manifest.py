"""The KubeRay manifest serves exactly what serve_config.yaml serves."""

from __future__ import annotations

import tomllib

import ray
import yaml
from ray.serve.schema import ServeDeploySchema

from serve_app.settings import REPO_ROOT

MANIFEST = REPO_ROOT / "k8s" / "rayservice.yaml"


def rayservice() -> dict:
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    (service,) = [d for d in docs if d["kind"] == "RayService"]
    return service


def test_serve_config_v2_equals_serve_config_yaml_but_host() -> None:
    embedded = yaml.safe_load(rayservice()["spec"]["serveConfigV2"])
    local = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    assert embedded["http_options"].pop("host") == "0.0.0.0"
    local["http_options"].pop("host")
    assert embedded == local
    ServeDeploySchema.model_validate(yaml.safe_load(rayservice()["spec"]["serveConfigV2"]))


def test_versions_match_the_installed_ray_and_the_project() -> None:
    cluster = rayservice()["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == ray.__version__
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    images = {c["image"] for g in groups for c in g["template"]["spec"]["containers"]}
    assert images == {f"ghcr.io/medai-flow/medai-flow:{version}"}


def test_no_literal_secret_in_the_manifest() -> None:
    cluster = rayservice()["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        for container in group["template"]["spec"]["containers"]:
            for var in container.get("env", []):
                name = var["name"].upper()
                assert not any(w in name for w in ("SECRET", "KEY", "PASSWORD", "TOKEN")), name
            assert {"secretRef": {"name": "medai-secrets", "optional": True}} in container[
                "envFrom"
            ]
