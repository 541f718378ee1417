"""The CI workflow runs the project's own entry points against real servers and builds the
image; the image runs every process as a non-root user."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, ROOT, SERVICES, WORKFLOW, load_yaml

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


@pytest.fixture(scope="module")
def jobs() -> dict[str, dict[str, Any]]:
    workflow = load_yaml(WORKFLOW)
    result: dict[str, dict[str, Any]] = workflow["jobs"]
    return result


def run_lines(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = job["steps"]
    (step,) = [s for s in steps if s.get("uses", "").startswith(f"{action}@")]
    return step


def test_lint_runs_the_lint_script_and_buf_breaking(jobs: dict[str, dict[str, Any]]) -> None:
    commands = run_lines(jobs["lint"])
    assert "make lint" in commands
    assert re.search(r"buf breaking --against", commands)
    # make lint is scripts/lint: ruff, ruff format --check, mypy strict and buf lint.
    script = (ROOT / "scripts" / "lint").read_text()
    for check in ("ruff check", "ruff format --check", "mypy", "buf lint"):
        assert check in script, check


def test_tests_run_make_test_against_postgres_16_and_redis_7(
    jobs: dict[str, dict[str, Any]],
) -> None:
    job = jobs["test"]
    assert "make test" in run_lines(job)
    services = job["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    # The suite connects as user postgres without a password, on the default ports.
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "5432:5432" in services["postgres"]["ports"]
    assert "6379:6379" in services["redis"]["ports"]
    python = uses(job, "actions/setup-python")["with"]["python-version"]
    assert python == "${{ env.PYTHON_VERSION }}"
    assert load_yaml(WORKFLOW)["env"]["PYTHON_VERSION"] == "3.11"


def test_image_is_built_without_pushing(jobs: dict[str, dict[str, Any]]) -> None:
    build = uses(jobs["image"], "docker/build-push-action")["with"]
    assert build["push"] is False
    assert (ROOT / build["context"] / build["file"]).resolve() == DOCKERFILE


def test_image_runs_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    (user,) = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")
    assert "ZAP_ENVIRONMENT=production" in text


def test_image_exposes_the_ports_the_processes_listen_on(
    service_settings: dict[str, Any],
) -> None:
    (expose,) = re.findall(r"^EXPOSE (.+)$", DOCKERFILE.read_text(), re.MULTILINE)
    exposed: set[int] = set()
    for item in expose.split():
        low, _, high = item.partition("-")
        exposed.update(range(int(low), int(high or low) + 1))
    for service in SERVICES:
        assert service_settings[service]().grpc_port in exposed, service
    assert service_settings["gateway"]().http_port in exposed
    assert {9100, 9101} <= exposed  # metrics, as Compose and the manifests set them
