"""The KubeRay manifests serve exactly what serve_config.yaml serves, and hold no secret."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
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


GROUP_OF_DEPLOYMENT = {
    "Ingress": "medai_ingress",
    "AuditWriter": "medai_audit",
    "Registry": "medai_registry",
    "Preprocessor": "medai_untrusted",
    "model-*": "medai_untrusted",
}
"""The node group (custom resource) each deployment is pinned to."""

SECRETS_OF_GROUP = {
    "head": {"medai-ingress-secrets"},
    "audit": {"medai-audit-secrets"},
    "registry": set(),
    "cpu": set(),
    "gpu": set(),
}


def groups() -> dict[str, dict[str, Any]]:
    cluster = rayservice()["spec"]["rayClusterConfig"]
    return {"head": cluster["headGroupSpec"]} | {
        g["groupName"]: g for g in cluster["workerGroupSpecs"]
    }


def group_resources(group: dict[str, Any]) -> dict[str, float]:
    # NOTE: KubeRay passes rayStartParams.resources to `ray start --resources` as a
    # quoted JSON string.
    raw = group["rayStartParams"].get("resources")
    return json.loads(json.loads(raw)) if raw else {}


def test_serve_config_v2_equals_serve_config_yaml_but_host_and_node_groups() -> None:
    embedded = serve_config_v2()
    local = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    assert embedded["http_options"].pop("host") == "0.0.0.0"
    local["http_options"].pop("host")
    for deployment in embedded["applications"][0]["deployments"]:
        pinned = deployment["ray_actor_options"].pop("resources")
        group = GROUP_OF_DEPLOYMENT.get(deployment["name"]) or GROUP_OF_DEPLOYMENT["model-*"]
        assert pinned == {group: 0.001}, deployment["name"]
    assert embedded == local


def test_each_node_group_offers_the_resource_its_deployments_are_pinned_to() -> None:
    offered = {name: set(group_resources(g)) for name, g in groups().items()}
    assert offered == {
        "head": {"medai_ingress"},
        "audit": {"medai_audit"},
        "registry": {"medai_registry"},
        "cpu": {"medai_untrusted"},
        "gpu": {"medai_untrusted"},
    }


def test_each_node_gets_only_the_secrets_and_volumes_of_what_runs_on_it() -> None:
    for name, group in groups().items():
        spec = group["template"]["spec"]
        (container,) = spec["containers"]
        refs = {e["secretRef"]["name"] for e in container.get("envFrom", [])}
        assert refs == SECRETS_OF_GROUP[name], name
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        # the audit checkpoints only where the audit writer runs
        assert ("audit-checkpoints" in mounts) == (name == "audit"), name
        # the model store written only by the registry's node, absent from the audit's
        if name == "audit":
            assert "model-store" not in mounts
        else:
            assert mounts["model-store"].get("readOnly", False) == (name != "registry"), name
        assert spec["securityContext"]["runAsNonRoot"] is True
        # Ray's own token is every node's (it is the cluster's, not the application's)
        env = {v["name"]: v for v in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "medai-ray-token"
        assert env["RAY_USE_TLS"]["value"] == "1"


def test_the_dashboard_answers_on_the_pods_loopback_only() -> None:
    head = groups()["head"]
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    ports = {p["name"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert "dashboard" not in ports


def test_gpu_workers_run_the_gpu_image_on_gpu_nodes() -> None:
    spec = groups()["gpu"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"].endswith("-gpu")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_pod_templates_are_valid_kubernetes() -> None:
    # NOTE: the RayService's schema is KubeRay's CRD, not shipped in any package; its pod
    # templates are core Kubernetes and are validated against the schemas
    # kubernetes-validate ships. The PVCs are validated whole.
    for name, group in groups().items():
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}}
        kubernetes_validate.validate(template | {"template": group["template"]}, "1.33", True)
    for document in documents():
        if document["kind"] != "RayService":
            kubernetes_validate.validate(document, "1.33", True)


def test_serve_config_v2_is_a_valid_serve_deploy_config() -> None:
    ServeDeploySchema.model_validate(serve_config_v2())


def test_worker_groups_that_can_grow_have_the_autoscaler_to_grow_them() -> None:
    cluster = rayservice()["spec"]["rayClusterConfig"]
    growing = [g for g in cluster["workerGroupSpecs"] if g["maxReplicas"] > g["minReplicas"]]
    assert growing and cluster["enableInTreeAutoscaling"] is True
    autoscaler = cluster["autoscalerOptions"]
    head = {
        v["name"]: v for v in cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    }
    ray_env = {
        name: var
        for name, var in head.items()
        if name.startswith(("RAY_AUTH", "RAY_TLS", "RAY_USE_TLS"))
    }
    # it joins the cluster as the nodes do (token, TLS) and gets nothing of the app's
    assert {v["name"]: v for v in autoscaler["env"]} == ray_env
    assert [m["name"] for m in autoscaler["volumeMounts"]] == ["ray-tls"]
    assert autoscaler["securityContext"]["runAsNonRoot"] is True


def test_versions_match_the_installed_ray_and_the_project() -> None:
    assert rayservice()["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    image = f"ghcr.io/medai-flow/medai-flow:{version}"
    assert {c["image"] for c in containers()} == {image, f"{image}-gpu"}


def test_every_container_gets_the_settings() -> None:
    for container in containers():
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["MEDAI_ENVIRONMENT"] == "production"
        assert env["MEDAI_MODEL_STORE"] == "/models"


def test_every_container_runs_ray_as_medai_serve_does() -> None:
    for container in containers():
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert serve_env(high_throughput=True).items() <= env.items()


def test_no_literal_secret_in_the_manifests() -> None:
    for var in env_vars(documents()):
        if any(word in var["name"].upper() for word in SECRET_WORDS):
            # a path names where a Secret is mounted; it holds none of it
            literal = var.get("value")
            assert literal is None or literal.startswith("/"), f"{var['name']} is literal"
