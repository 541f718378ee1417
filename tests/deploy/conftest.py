"""The deploy files, read once, and what the code says they must agree with: the Procfile's
processes, the settings classes' environment variable names and defaults, the gateway's routes."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic_settings import BaseSettings

from gateway.app import create_app
from gateway.routes import notifications
from gateway.settings import GatewaySettings
from zapcore.settings import PlatformSettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker" / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "docker" / ".env.example"
K8S = DEPLOY / "k8s"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
VENV_BIN = ROOT / ".venv" / "bin"

SERVICES = ("auth", "feed", "graph", "media", "moderation", "notification")
WORKERS = ("auth", "feed", "media", "moderation", "notification")
# Procfile's `s3` is the development store (moto); Compose runs MinIO instead and Kubernetes
# points media at a real S3 endpoint. Every other Procfile line is a ZAP process.
DEV_ONLY_PROCESSES = frozenset({"s3"})


def load_yaml_documents(path: Path) -> list[Any]:
    """Every document of a (possibly multi-document) YAML file, empty ones dropped."""
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def load_yaml(path: Path) -> Any:
    (document,) = load_yaml_documents(path)
    return document


def tool(name: str) -> str:
    """A command-line tool from the project's virtualenv (or PATH)."""
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is in the dev dependency group)")
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def procfile() -> dict[str, list[str]]:
    """Process name -> command, from the Procfile `make up` runs."""
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.split()
    return processes


@pytest.fixture(scope="session")
def zap_processes(procfile: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: cmd for name, cmd in procfile.items() if name not in DEV_ONLY_PROCESSES}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return document


@pytest.fixture(scope="session")
def compose_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def settings_classes() -> dict[str, type[BaseSettings]]:
    """Every settings class a ZAP process reads, by the name of what reads it."""
    classes: dict[str, type[BaseSettings]] = {"platform": PlatformSettings}
    for service in SERVICES:
        classes[service] = importlib.import_module(f"services.{service}.settings").Settings
    classes["gateway"] = GatewaySettings
    return classes


@pytest.fixture(scope="session")
def service_settings() -> dict[str, type[ServiceSettings]]:
    classes = settings_classes()
    return {name: cls for name, cls in classes.items() if issubclass(cls, ServiceSettings)}


@pytest.fixture(scope="session")
def setting_names() -> frozenset[str]:
    """Every environment variable name some settings class reads (prefix + field name)."""
    names: set[str] = set()
    for cls in settings_classes().values():
        prefix = str(cls.model_config.get("env_prefix", ""))
        assert prefix.startswith("ZAP_"), cls
        names.update(f"{prefix}{field}".upper() for field in cls.model_fields)
    return frozenset(names)


@dataclass(frozen=True)
class GatewayRoutes:
    http: frozenset[str]
    websocket: frozenset[str]


@pytest.fixture(scope="session")
def gateway_routes() -> GatewayRoutes:
    app = create_app(PlatformSettings(), GatewaySettings())
    http = frozenset(app.openapi()["paths"])
    sockets = frozenset(str(getattr(route, "path", "")) for route in notifications.sockets.routes)
    return GatewayRoutes(http=http, websocket=sockets)


def kustomization_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(field, file) for every file a kustomization lists, following folders it lists."""
    kustomization = load_yaml(folder / "kustomization.yaml")
    for field in ("resources", "components"):
        for entry in kustomization.get(field, []):
            target = (folder / entry).resolve()
            if target.is_dir():
                yield from kustomization_files(target)
            else:
                yield field, target
    for patch in kustomization.get("patches", []):
        assert "path" in patch, f"{folder}: inline patches cannot be validated, use a file"
        yield "patches", (folder / patch["path"]).resolve()
    assert "patchesStrategicMerge" not in kustomization, "deprecated: use `patches`"


@pytest.fixture(scope="session")
def k8s_resources() -> list[dict[str, Any]]:
    """Every object the base kustomization lists (before kustomize transforms them)."""
    return [
        doc for _, path in kustomization_files(K8S / "base") for doc in load_yaml_documents(path)
    ]


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in resources if doc["kind"] == kind}
