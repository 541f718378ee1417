"""deploy/k8s: one Deployment per Procfile process, probed on the ports and paths the code
serves, hardened, scaled, protected from disruption, configured only with real settings."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from services.auth.tokens.keys import write_new_key
from tests.deploy.conftest import (
    K8S,
    SERVICES,
    WORKERS,
    GatewayRoutes,
    by_kind,
    kustomization_files,
    load_yaml_documents,
)
from zapcore.settings import PlatformSettings, ServiceSettings

PLACEHOLDER = "changeme"


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    container: dict[str, Any] = containers[0]
    return container


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


@pytest.fixture(scope="module")
def deployments(k8s_resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return by_kind(k8s_resources, "Deployment")


@pytest.fixture(scope="module")
def config(k8s_resources: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = by_kind(k8s_resources, "ConfigMap")["zap-config"]["data"]
    return data


def test_every_procfile_process_has_a_deployment_with_its_command(
    deployments: dict[str, dict[str, Any]], zap_processes: dict[str, list[str]]
) -> None:
    assert set(deployments) == set(zap_processes)
    for name, command in zap_processes.items():
        assert main_container(deployments[name])["command"] == command, name
        assert main_container(deployments[name])["image"] == "zap", name


def test_media_points_at_a_real_s3_endpoint(config: dict[str, str]) -> None:
    # No MinIO in the cluster: the endpoint and the CDN are https URLs.
    assert config["ZAP_MEDIA_S3_ENDPOINT_URL"].startswith("https://")
    assert config["ZAP_MEDIA_CDN_BASE_URL"].startswith("https://")
    assert config["ZAP_MEDIA_S3_BUCKET"]


def test_every_pod_has_limits_and_a_locked_down_security_context(
    k8s_resources: list[dict[str, Any]],
) -> None:
    workloads = [doc for doc in k8s_resources if doc["kind"] in ("Deployment", "Job")]
    assert len(workloads) == len(SERVICES) + len(WORKERS) + 2  # + gateway + migrate
    for workload in workloads:
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("service", SERVICES)
def test_service_probes_are_grpc_health_on_its_port(
    service: str,
    deployments: dict[str, dict[str, Any]],
    k8s_resources: list[dict[str, Any]],
    config: dict[str, str],
    service_settings: dict[str, type[ServiceSettings]],
) -> None:
    port = service_settings[service]().grpc_port
    container = main_container(deployments[service])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == port, probe
    assert {"name": "grpc", "containerPort": port} in container["ports"]
    assert config[f"ZAP_{service.upper()}_GRPC_PORT"] == str(port)
    assert config[f"ZAP_{service.upper()}_GRPC_HOST"] == "0.0.0.0"
    (svc_port,) = by_kind(k8s_resources, "Service")[service]["spec"]["ports"]
    assert (svc_port["port"], svc_port["targetPort"]) == (port, "grpc")
    assert config[f"ZAP_{service.upper()}_TARGET"] == f"{service}:{port}"


def test_gateway_probes_are_its_health_routes(
    deployments: dict[str, dict[str, Any]],
    config: dict[str, str],
    gateway_routes: GatewayRoutes,
) -> None:
    container = main_container(deployments["gateway"])
    http_port = int(config["ZAP_GATEWAY_HTTP_PORT"])
    assert {"name": "http", "containerPort": http_port} in container["ports"]
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "http", probe
        assert get["path"] in gateway_routes.http, probe
        # The kubelet would send the pod IP as Host; production refuses hosts not listed.
        (host,) = [h["value"] for h in get["httpHeaders"] if h["name"] == "Host"]
        assert f'"{host}"' in config["ZAP_GATEWAY_ALLOWED_HOSTS"], probe
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz/edge",
        "livenessProbe": "/healthz",
    }


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_probes_are_its_metrics_endpoint(
    worker: str, deployments: dict[str, dict[str, Any]], config: dict[str, str]
) -> None:
    port = int(config[f"ZAP_{worker.upper()}_WORKER_METRICS_PORT"])
    container = main_container(deployments[f"{worker}-worker"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": port}, probe


def test_prometheus_annotations_name_the_metrics_port(
    deployments: dict[str, dict[str, Any]], config: dict[str, str]
) -> None:
    for name, deployment in deployments.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        service = name.removesuffix("-worker").upper()
        setting = "WORKER_METRICS_PORT" if name.endswith("-worker") else "METRICS_PORT"
        port = config[f"ZAP_{service}_{setting}"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == port, name
        assert {"name": "metrics", "containerPort": int(port)} in main_container(deployment)[
            "ports"
        ], name


def test_gateway_and_services_autoscale(
    deployments: dict[str, dict[str, Any]], k8s_resources: list[dict[str, Any]]
) -> None:
    hpas = [doc for doc in k8s_resources if doc["kind"] == "HorizontalPodAutoscaler"]
    assert all(hpa["apiVersion"] == "autoscaling/v2" for hpa in hpas)
    targets = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in hpas}
    assert set(targets) == {"gateway", *SERVICES}
    for name, hpa in targets.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert name in deployments
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"], name


def test_every_deployment_has_a_disruption_budget(
    deployments: dict[str, dict[str, Any]], k8s_resources: list[dict[str, Any]]
) -> None:
    budgets = [doc for doc in k8s_resources if doc["kind"] == "PodDisruptionBudget"]
    for name, deployment in deployments.items():
        matching = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(matching) == 1, name
        assert selects(deployment["spec"]["selector"], pod_labels(deployment)), name


def test_websockets_go_through_an_ingress_with_long_timeouts(
    k8s_resources: list[dict[str, Any]], gateway_routes: GatewayRoutes
) -> None:
    services = by_kind(k8s_resources, "Service")
    paths: dict[str, dict[str, str]] = {}
    for ingress in by_kind(k8s_resources, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                port_names = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in port_names
                paths[path["path"]] = ingress["metadata"]["annotations"]
    ws = paths["/ws/"]
    assert any(route.startswith("/ws/") for route in gateway_routes.websocket)
    assert ws["nginx.ingress.kubernetes.io/proxy-http-version"] == "1.1"
    assert int(ws["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ws["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    # The public paths lead to real routes; health and metrics stay inside the cluster.
    for prefix in paths:
        assert any(r.startswith(prefix) for r in gateway_routes.http | gateway_routes.websocket)
    assert not {"/healthz", "/readyz", "/readyz/edge", "/metrics", "/"} & set(paths)


def test_migration_job_runs_the_migrations_with_every_database(
    k8s_resources: list[dict[str, Any]],
) -> None:
    job = by_kind(k8s_resources, "Job")["migrate"]
    container = main_container(job)
    assert container["command"] == ["python", "-m", "scripts.migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    secret_refs = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
    assert {f"zap-{s}" for s in SERVICES} <= secret_refs


def test_config_and_secrets_referenced_exist_and_hold_only_settings(
    k8s_resources: list[dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    setting_names: frozenset[str],
) -> None:
    config_maps = by_kind(k8s_resources, "ConfigMap")
    secret_objects = by_kind(k8s_resources, "Secret")
    for name, obj in [*config_maps.items(), *secret_objects.items()]:
        keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
        assert keys - setting_names == set(), f"{name} holds variables no setting reads"
    for workload in [*deployments.values(), by_kind(k8s_resources, "Job")["migrate"]]:
        for container in pod_spec(workload)["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secret_objects
            for variable in container.get("env", []):
                assert variable["name"] in setting_names, variable["name"]


def test_secret_templates_hold_placeholders_only(k8s_resources: list[dict[str, Any]]) -> None:
    for name, secret in by_kind(k8s_resources, "Secret").items():
        assert "data" not in secret, name
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in value, f"{name}.{key} looks like a real value"


def settings_environment(
    deployment: dict[str, Any], k8s_resources: list[dict[str, Any]], secret_value: Any
) -> dict[str, str]:
    """The variables a container gets from its envFrom, secrets through `secret_value`."""
    env: dict[str, str] = {}
    for source in main_container(deployment)["envFrom"]:
        if "configMapRef" in source:
            env.update(by_kind(k8s_resources, "ConfigMap")[source["configMapRef"]["name"]]["data"])
        else:
            secret = by_kind(k8s_resources, "Secret")[source["secretRef"]["name"]]
            env.update({k: secret_value(v) for k, v in secret["stringData"].items()})
    return env


def check_production(
    deployment: dict[str, Any],
    k8s_resources: list[dict[str, Any]],
    secret_value: Any,
    service_settings: dict[str, type[ServiceSettings]],
    monkeypatch: pytest.MonkeyPatch,
    keys_dir: Path,
    overlay: dict[str, str] | None = None,
) -> None:
    env = {**settings_environment(deployment, k8s_resources, secret_value), **(overlay or {})}
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("ZAP_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setenv("ZAP_AUTH_SIGNING_KEYS_DIR", str(keys_dir))
        platform = PlatformSettings()
        service_settings[deployment["metadata"]["name"].removesuffix("-worker")]().check_production(
            platform
        )


def fresh_secret(value: str) -> str:
    return value.replace(PLACEHOLDER, secrets.token_hex(32))


def test_templates_are_refused_and_real_secrets_pass_the_production_checklist(
    deployments: dict[str, dict[str, Any]],
    k8s_resources: list[dict[str, Any]],
    service_settings: dict[str, type[ServiceSettings]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    write_new_key(tmp_path)  # what secret zap-auth-signing-keys holds
    (overlay,) = [
        doc["data"]
        for field, path in kustomization_files(K8S / "overlays" / "production")
        if field == "patches"
        for doc in load_yaml_documents(path)
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "zap-config"
    ]
    for deployment in deployments.values():
        # As committed, the placeholders are refused...
        with pytest.raises(ValueError, match="refusing to start in production"):
            check_production(
                deployment, k8s_resources, str, service_settings, monkeypatch, tmp_path
            )
        # ...and with each replaced by a fresh secret, in the production overlay (which names
        # the ingress's addresses, which the base cannot know), every check passes.
        check_production(
            deployment,
            k8s_resources,
            fresh_secret,
            service_settings,
            monkeypatch,
            tmp_path,
            overlay,
        )
    # The base alone leaves the gateway refusing to trust (or start behind) an unnamed ingress.
    with pytest.raises(ValueError, match="ZAP_GATEWAY_TRUSTED_PROXIES must name"):
        check_production(
            deployments["gateway"],
            k8s_resources,
            fresh_secret,
            service_settings,
            monkeypatch,
            tmp_path,
        )


def test_overlay_patches_name_objects_of_the_base(k8s_resources: list[dict[str, Any]]) -> None:
    base = {(doc["kind"], doc["metadata"]["name"]) for doc in k8s_resources}
    for overlay in (K8S / "overlays").iterdir():
        for field, path in kustomization_files(overlay):
            if field == "patches":
                for doc in load_yaml_documents(path):
                    assert (doc["kind"], doc["metadata"]["name"]) in base, path
