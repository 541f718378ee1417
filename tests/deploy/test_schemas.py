"""Every deploy file parses, and the ones with a published schema validate against it:
Compose (compose-spec), the CI workflow (GitHub's), every Kubernetes manifest (the API's
own schemas, strict: unknown fields fail). All offline: the schemas ship with the tools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy.conftest import (
    COMPOSE_FILE,
    DEPLOY,
    K8S,
    ROOT,
    WORKFLOW,
    kustomization_files,
    load_yaml_documents,
    run,
    tool,
)

YAML_FILES = sorted(
    [
        *DEPLOY.rglob("*.yaml"),
        *DEPLOY.rglob("*.yml"),
        *(ROOT / ".github").rglob("*.yml"),
        *(ROOT / ".github").rglob("*.yaml"),
    ]
)


def check_jsonschema(schema: str, path: Path) -> tuple[int, str]:
    result = run(tool("check-jsonschema"), "--builtin-schema", schema, str(path))
    return result.returncode, result.stdout + result.stderr


def kubernetes_validate(*paths: Path) -> tuple[int, str]:
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", *map(str, paths))
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path) -> None:
    assert load_yaml_documents(path), f"{path} is empty"


def test_there_are_deploy_files() -> None:
    names = {str(p.relative_to(ROOT)) for p in YAML_FILES}
    assert {
        "deploy/docker/compose.yaml",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/alerts.yml",
        "deploy/k8s/base/kustomization.yaml",
        ".github/workflows/ci.yml",
    } <= names


def test_dashboard_is_json() -> None:
    for path in (DEPLOY / "grafana").rglob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path


def test_compose_matches_the_compose_spec() -> None:
    code, output = check_jsonschema("vendor.compose-spec", COMPOSE_FILE)
    assert code == 0, output


def test_workflow_matches_githubs_schema() -> None:
    code, output = check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert code == 0, output


def test_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    """The checks above can fail: a misspelt key in a copy of the Compose file is refused."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    compose["services"]["gateway"]["healthcheck"]["intervall"] = "10s"
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(compose))
    code, _ = check_jsonschema("vendor.compose-spec", broken)
    assert code != 0


def kustomize_listed_files() -> list[Path]:
    files = {path for _, path in kustomization_files(K8S / "base")}
    for overlay in (K8S / "overlays").iterdir():
        files.update(path for _, path in kustomization_files(overlay))
    return sorted(files)


def test_every_k8s_file_is_listed_by_a_kustomization() -> None:
    listed = set(kustomize_listed_files())
    on_disk = {
        path.resolve()
        for path in [*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")]
        if path.name != "kustomization.yaml"
    }
    assert on_disk - listed == set(), "files no kustomization applies"
    assert listed - on_disk == set(), "listed files that do not exist"


def test_every_listed_manifest_and_patch_is_valid_kubernetes() -> None:
    code, output = kubernetes_validate(*kustomize_listed_files())
    assert code == 0, output


def test_kubernetes_validation_rejects_unknown_fields(tmp_path: Path) -> None:
    """--strict is on: a field the API does not have fails."""
    (deployment,) = [
        doc
        for doc in load_yaml_documents(K8S / "base" / "gateway.yaml")
        if doc["kind"] == "Deployment"
    ]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    broken = tmp_path / "deployment.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    code, _ = kubernetes_validate(broken)
    assert code != 0


def test_kustomize_renders_valid_manifests(tmp_path: Path) -> None:
    """What `kubectl apply -k` would send (patches applied, namespace set) is valid too."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    for folder in [K8S / "base", *sorted((K8S / "overlays").iterdir())]:
        result = run(kubectl, "kustomize", str(folder))
        assert result.returncode == 0, result.stderr
        rendered = tmp_path / f"{folder.name}.yaml"
        rendered.write_text(result.stdout)
        code, output = kubernetes_validate(rendered)
        assert code == 0, output
        for doc in yaml.safe_load_all(result.stdout):
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "zap", doc["metadata"]["name"]
            if folder.parent.name == "overlays" and doc["kind"] in ("Deployment", "Job"):
                pod = doc["spec"]["template"]["spec"]
                for container in [*pod.get("initContainers", []), *pod["containers"]]:
                    assert container["image"] != "zap", "the overlay sets the image"
