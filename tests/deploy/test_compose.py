"""deploy/docker/compose.yaml runs what Procfile runs, wired the way the code reads it."""

from __future__ import annotations

import os
import re
import secrets
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from services.auth.tokens.keys import write_new_key
from tests.deploy.conftest import (
    COMPOSE_FILE,
    DEPLOY,
    ENV_EXAMPLE,
    SERVICES,
    WORKERS,
    GatewayRoutes,
)
from zapcore.settings import PlatformSettings, ServiceSettings

APP_IMAGE = "${ZAP_IMAGE:-zap:local}"
REQUIRED_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<op>:\?|:-|\?|-)?[^}]*\}")


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if svc.get("image") == APP_IMAGE}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping (it is merged from anchors)"
    return {str(k): str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def healthcheck_argument(service: dict[str, Any]) -> str:
    """The last argument of a `python -c <code> <argument>` health check."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return str(test[-1])


def test_every_procfile_process_runs_with_the_same_command(
    compose_services: dict[str, dict[str, Any]], zap_processes: dict[str, list[str]]
) -> None:
    for name, command in zap_processes.items():
        assert name in compose_services, f"Procfile's {name} is not in Compose"
        assert compose_services[name]["command"] == command, name
        assert compose_services[name]["image"] == APP_IMAGE, name


def test_the_s3_process_is_minio_with_its_bucket(
    compose_services: dict[str, dict[str, Any]],
) -> None:
    assert compose_services["minio"]["image"].startswith("minio/minio")
    init = compose_services["minio-init"]
    assert "mc mb --ignore-existing local/zap-media" in init["entrypoint"][-1]
    for name in ("media", "media-worker"):
        env = environment(compose_services[name])
        assert env["ZAP_MEDIA_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert env["ZAP_MEDIA_S3_BUCKET"] == "zap-media"
        assert depends_on(compose_services[name])["minio-init"] == "service_completed_successfully"


def test_migrations_run_once_before_every_process(
    compose_services: dict[str, dict[str, Any]], zap_processes: dict[str, list[str]]
) -> None:
    migrate = compose_services["migrate"]
    assert migrate["command"] == ["python", "-m", "scripts.migrate"]
    assert migrate["restart"] == "no"
    assert depends_on(migrate) == {"postgres": "service_healthy"}
    env = environment(migrate)
    for service in SERVICES:
        assert f"ZAP_{service.upper()}_DATABASE_URL" in env, service
    for name in zap_processes:
        if name != "gateway":  # the gateway waits for healthy services, which waited
            assert depends_on(compose_services[name])["migrate"] == (
                "service_completed_successfully"
            ), name


def test_gateway_waits_for_healthy_services(
    compose_services: dict[str, dict[str, Any]],
) -> None:
    conditions = depends_on(compose_services["gateway"])
    for service in SERVICES:
        assert conditions[service] == "service_healthy", service


def test_postgres_16_holds_one_database_per_service(
    compose_services: dict[str, dict[str, Any]],
    service_settings: dict[str, type[ServiceSettings]],
) -> None:
    postgres = compose_services["postgres"]
    assert postgres["image"].split(":")[1].startswith("16")
    init_mount = next(v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = (COMPOSE_FILE.parent / init_mount.split(":")[0]).read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+);", script))
    # The names each service uses by default are the ones Compose points it at.
    expected = {make_url(service_settings[s]().database_url).database for s in SERVICES}
    assert created == expected
    migrate_env = environment(compose_services["migrate"])
    for service in SERVICES:
        url = make_url(migrate_env[f"ZAP_{service.upper()}_DATABASE_URL"])
        assert url.host == "postgres"
        assert url.database in created


def test_redis_7_keeps_an_append_only_file(compose_services: dict[str, dict[str, Any]]) -> None:
    redis = compose_services["redis"]
    assert redis["image"].split(":")[1].startswith("7")
    assert "--appendonly yes" in " ".join(redis["command"])
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


@pytest.mark.parametrize("service", SERVICES)
def test_service_health_checks_its_grpc_port(
    service: str,
    compose_services: dict[str, dict[str, Any]],
    service_settings: dict[str, type[ServiceSettings]],
) -> None:
    port = service_settings[service]().grpc_port
    env = environment(compose_services[service])
    assert env[f"ZAP_{service.upper()}_GRPC_PORT"] == str(port)
    assert env[f"ZAP_{service.upper()}_GRPC_HOST"] == "0.0.0.0"
    assert healthcheck_argument(compose_services[service]) == str(port)
    assert environment(compose_services["gateway"])[f"ZAP_{service.upper()}_TARGET"] == (
        f"{service}:{port}"
    )


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_health_checks_its_metrics_port(
    worker: str, compose_services: dict[str, dict[str, Any]]
) -> None:
    name = f"{worker}-worker"
    port = environment(compose_services[name])[f"ZAP_{worker.upper()}_WORKER_METRICS_PORT"]
    assert healthcheck_argument(compose_services[name]) == f"http://127.0.0.1:{port}/metrics"


def test_gateway_health_check_is_its_readiness_route(
    compose_services: dict[str, dict[str, Any]], gateway_routes: GatewayRoutes
) -> None:
    gateway = compose_services["gateway"]
    env = environment(gateway)
    url = urlsplit(healthcheck_argument(gateway))
    assert url.port == int(env["ZAP_GATEWAY_HTTP_PORT"])
    assert url.path == "/readyz"
    assert url.path in gateway_routes.http
    # The check's Host header (127.0.0.1) must pass the production host filter.
    assert f'"{url.hostname}"' in env["ZAP_GATEWAY_ALLOWED_HOSTS"]
    assert gateway["ports"] == [f"{env['ZAP_GATEWAY_HTTP_PORT']}:8080"]


def test_every_zap_variable_is_a_setting(
    compose_services: dict[str, dict[str, Any]], setting_names: frozenset[str]
) -> None:
    for name, service in compose_services.items():
        unknown = {key for key in environment(service) if key.startswith("ZAP_")} - setting_names
        assert not unknown, f"{name} sets variables no settings class reads: {unknown}"


def test_processes_run_in_production_mode_read_only(
    compose_services: dict[str, dict[str, Any]],
) -> None:
    for name, service in app_services(compose_services).items():
        if name in ("migrate", "signing-key"):
            continue
        assert environment(service)["ZAP_ENVIRONMENT"] == "production", name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name


def test_secrets_are_required_variables_listed_in_env_example(
    compose_services: dict[str, dict[str, Any]],
) -> None:
    text = COMPOSE_FILE.read_text()
    used = {m["name"]: m["op"] for m in REQUIRED_VARIABLE.finditer(text)}
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    required = {name for name, op in used.items() if op == ":?"}
    assert required <= set(example), f"missing from .env.example: {required - set(example)}"
    assert {"ZAP_INTERNAL_SECRET", "POSTGRES_PASSWORD", "REDIS_PASSWORD"} <= required
    # Secret values are never in the files: empty in the example, required in Compose.
    for name in required:
        if re.search("SECRET|PASSWORD", name):
            assert example[name] == "", f"{name} has a value in .env.example"
    for service in compose_services.values():
        for key, value in environment(service).items():
            if re.search("SECRET|PASSWORD|DATABASE_URL|REDIS_URL", key):
                assert "${" in value, f"{key} is written into compose.yaml"


def resolved_environment(service: dict[str, Any], variables: dict[str, str]) -> dict[str, str]:
    def substitute(value: str) -> str:
        return REQUIRED_VARIABLE.sub(lambda m: variables[m["name"]], value)

    return {key: substitute(value) for key, value in environment(service).items()}


def test_compose_passes_the_production_checklist(
    compose_services: dict[str, dict[str, Any]],
    service_settings: dict[str, type[ServiceSettings]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """With fresh secrets in .env, every process's settings pass the start-up checks."""
    variables = {
        line.split("=", 1)[0]: line.split("=", 1)[1] or secrets.token_hex(32)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    write_new_key(tmp_path)  # what the signing-key step does in the auth-keys volume
    checked = 0
    for name, service in app_services(compose_services).items():
        env = resolved_environment(service, variables)
        if "ZAP_ENVIRONMENT" not in env:
            continue
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("ZAP_")]:
                patch.delenv(key)
            for key, value in env.items():
                patch.setenv(key, value)
            patch.setenv("ZAP_AUTH_SIGNING_KEYS_DIR", str(tmp_path))
            platform = PlatformSettings()
            assert platform.is_production
            owner = name.removesuffix("-worker")
            if owner in service_settings:
                service_settings[owner]().check_production(platform)
                checked += 1
    assert checked == len([*SERVICES, *WORKERS, "gateway"])


def test_grafana_and_prometheus_mount_the_files_in_deploy(
    compose_services: dict[str, dict[str, Any]],
) -> None:
    for name in ("prometheus", "grafana"):
        for volume in compose_services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).resolve().exists(), volume
    command = compose_services["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    grafana_env = environment(compose_services["grafana"])
    dashboard = Path(grafana_env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (DEPLOY / "grafana" / "dashboards" / dashboard.name).exists()


def test_signing_key_is_created_where_auth_reads_it(
    compose_services: dict[str, dict[str, Any]],
) -> None:
    step = compose_services["signing-key"]
    keys_dir = environment(step)["ZAP_AUTH_SIGNING_KEYS_DIR"]
    assert "zap-auth rotate-key" in shlex.join(step["command"])
    assert environment(compose_services["auth"])["ZAP_AUTH_SIGNING_KEYS_DIR"] == keys_dir
    assert f"auth-keys:{keys_dir}:ro" in compose_services["auth"]["volumes"]
    auth_waits_for = depends_on(compose_services["auth"])
    assert auth_waits_for["signing-key"] == "service_completed_successfully"
