"""SPEC §6's production checklist, enforced when a process starts in production mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.auth.settings import AuthSettings
from services.auth.tokens.keys import write_new_key
from services.graph.settings import GraphSettings
from services.media.settings import MediaSettings
from zapcore.settings import PlatformSettings, UnsafeForProduction

ROOT = Path(__file__).resolve().parents[2]
SECRET = "internal-" + "s" * 60
REDIS_PASSWORD = "redis-" + "r" * 30
DB_PASSWORD = "db-" + "d" * 30


def production(**overrides: object) -> PlatformSettings:
    values: dict[str, object] = {
        "environment": "production",
        "internal_secret": SECRET,
        "redis_url": f"redis://:{REDIS_PASSWORD}@redis:6379/0",
        **overrides,
    }
    return PlatformSettings.model_validate(values)


def db_url(password: str, name: str = "zap_graph") -> str:
    return f"postgresql+asyncpg://zap:{password}@db:5432/{name}"


def test_a_service_with_real_secrets_passes() -> None:
    GraphSettings(database_url=db_url(DB_PASSWORD)).check_production(production())


@pytest.mark.parametrize("password", ["", "postgres", "changeme"])
def test_default_database_passwords_are_refused(password: str) -> None:
    settings = GraphSettings(database_url=db_url(password))
    with pytest.raises(UnsafeForProduction, match="ZAP_GRAPH_DATABASE_URL must carry"):
        settings.check_production(production())


def test_one_secret_used_twice_is_refused() -> None:
    settings = GraphSettings(database_url=db_url(REDIS_PASSWORD))
    with pytest.raises(UnsafeForProduction) as refused:
        settings.check_production(production())
    assert refused.value.problems == [
        "ZAP_REDIS_URL's password and ZAP_GRAPH_DATABASE_URL's password must be different secrets"
    ]


def test_media_store_key_must_differ_from_the_platform_secret() -> None:
    settings = MediaSettings(
        database_url=db_url(DB_PASSWORD, "zap_media"),
        s3_endpoint_url="https://s3.eu-west-1.amazonaws.com",
        cdn_base_url="https://cdn.example.com",
        s3_secret_access_key=SECRET,
    )
    with pytest.raises(UnsafeForProduction, match="ZAP_MEDIA_S3_SECRET_ACCESS_KEY must be"):
        settings.check_production(production())


def auth_settings(keys: Path) -> AuthSettings:
    return AuthSettings(database_url=db_url(DB_PASSWORD, "zap_auth"), signing_keys_dir=keys)


def test_auth_refuses_to_start_without_a_signing_key(tmp_path: Path) -> None:
    with pytest.raises(UnsafeForProduction, match="has no key"):
        auth_settings(tmp_path).check_production(production())


def test_auth_accepts_a_private_signing_key(tmp_path: Path) -> None:
    write_new_key(tmp_path)
    auth_settings(tmp_path).check_production(production())


def test_a_signing_key_others_can_read_is_refused(tmp_path: Path) -> None:
    kid = write_new_key(tmp_path)
    (tmp_path / f"{kid}.pem").chmod(0o644)
    with pytest.raises(UnsafeForProduction, match="readable by its owner only"):
        auth_settings(tmp_path).check_production(production())


def test_the_jwt_key_must_not_be_another_secret(tmp_path: Path) -> None:
    key = tmp_path / "copied.pem"
    key.write_text(SECRET)
    key.chmod(0o600)
    with pytest.raises(UnsafeForProduction, match="contains another secret"):
        auth_settings(tmp_path).check_production(production())


def gateway(**values: object) -> GatewaySettings:
    return GatewaySettings.model_validate(
        {"allowed_hosts": ["api.zap.example"], "cors_origins": ["https://zap.example"], **values}
    )


def test_gateway_wildcards_are_refused() -> None:
    settings = gateway(allowed_hosts=["*"], cors_origins=["*"])
    with pytest.raises(UnsafeForProduction) as refused:
        settings.check_production(production())
    assert len(refused.value.problems) == 2


@pytest.mark.parametrize("limit", ["", "  ", "lots"])
def test_rate_limits_must_be_configured(limit: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit_user"):
        gateway(rate_limit_user=limit)


@pytest.mark.parametrize(
    ("environment", "enabled", "expected"),
    [("production", None, False), ("production", True, True), ("development", None, True)],
)
def test_grpc_reflection_is_off_in_production_unless_enabled(
    environment: str, enabled: bool | None, expected: bool
) -> None:
    platform = production() if environment == "production" else PlatformSettings()
    settings = GraphSettings(reflection=enabled)
    assert settings.reflection_enabled(platform) is expected


@pytest.mark.parametrize(("enabled", "status"), [(None, 404), (True, 200)])
async def test_docs_are_off_in_production_unless_enabled(enabled: bool | None, status: int) -> None:
    app = create_app(production(), gateway(docs_enabled=enabled))
    # No lifespan: the routes are checked without dialling any service.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.zap.example") as http:
        assert (await http.get("/openapi.json")).status_code == status
        assert (await http.get("/docs")).status_code == status


@pytest.mark.parametrize("module", ["gateway", "services.graph", "services.feed.worker"])
def test_a_process_started_with_development_defaults_in_production_refuses(module: str) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ZAP_") and key != "PYTHONPATH"
    }
    env |= {
        "ZAP_ENVIRONMENT": "production",
        "ZAP_INTERNAL_SECRET": SECRET,
        "ZAP_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
    }
    started = subprocess.run(
        [sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert started.returncode != 0
    stderr = started.stderr.decode()
    assert "refusing to start in production" in stderr
    assert "DATABASE_URL must carry a real password" in stderr or "ALLOWED_HOSTS" in stderr


# --- placeholders: the values a template or a tutorial ships with ------------------------

PLACEHOLDERS = ["changeme", "CHANGEME", "change-me", "change_me", "replace-me", "placeholder"]


@pytest.mark.parametrize("placeholder", [*PLACEHOLDERS, "changeme" * 8, "dev-only-" + "x" * 50])
def test_a_placeholder_internal_secret_is_refused(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="ZAP_INTERNAL_SECRET"):
        production(internal_secret=placeholder)


@pytest.mark.parametrize("placeholder", [*PLACEHOLDERS, "secret", "redis"])
def test_a_placeholder_redis_password_is_refused(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="ZAP_REDIS_URL"):
        production(redis_url=f"redis://:{placeholder}@redis:6379/0")


@pytest.mark.parametrize("placeholder", [*PLACEHOLDERS, "secret", "zap_graph"])
def test_a_placeholder_database_password_is_refused(placeholder: str) -> None:
    settings = GraphSettings(database_url=db_url(placeholder))
    with pytest.raises(UnsafeForProduction, match="ZAP_GRAPH_DATABASE_URL must carry"):
        settings.check_production(production())


def media(**values: object) -> MediaSettings:
    return MediaSettings.model_validate(
        {
            "database_url": db_url(DB_PASSWORD, "zap_media"),
            "s3_endpoint_url": "https://s3.eu-west-1.amazonaws.com",
            "cdn_base_url": "https://cdn.example.com",
            "s3_access_key_id": "AKIA" + "Q" * 16,
            "s3_secret_access_key": "s3-" + "k" * 37,
            **values,
        }
    )


def test_media_with_real_store_keys_passes() -> None:
    media().check_production(production())
    # No keys at all: the store's credentials come from the environment (an IAM role).
    media(s3_access_key_id="", s3_secret_access_key="").check_production(production())


@pytest.mark.parametrize(
    "placeholder", [*PLACEHOLDERS, "zap-dev-access-key", "minioadmin", "AKIAIOSFODNN7EXAMPLE"]
)
def test_placeholder_store_access_key_ids_are_refused(placeholder: str) -> None:
    with pytest.raises(UnsafeForProduction, match="ZAP_MEDIA_S3_ACCESS_KEY_ID must be"):
        media(s3_access_key_id=placeholder).check_production(production())


@pytest.mark.parametrize(
    "placeholder",
    [
        *PLACEHOLDERS,
        "",
        "zap-dev-secret-key",
        "minioadmin",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ],
)
def test_placeholder_store_secret_keys_are_refused(placeholder: str) -> None:
    with pytest.raises(UnsafeForProduction, match="ZAP_MEDIA_S3_SECRET_ACCESS_KEY must be"):
        media(s3_secret_access_key=placeholder).check_production(production())


def test_a_gateway_behind_an_ingress_must_name_the_ingress() -> None:
    gateway(trusted_proxies=[]).check_production(production())  # clients connect directly
    with pytest.raises(UnsafeForProduction, match="ZAP_GATEWAY_TRUSTED_PROXIES must name"):
        gateway(behind_proxy=True, trusted_proxies=[]).check_production(production())
    for everyone in (["0.0.0.0/0"], ["::/0"], ["10.0.0.0/8", "0.0.0.0/0"]):
        with pytest.raises(UnsafeForProduction, match="ZAP_GATEWAY_TRUSTED_PROXIES must not"):
            gateway(behind_proxy=True, trusted_proxies=everyone).check_production(production())
    gateway(behind_proxy=True, trusted_proxies=["10.20.0.0/24"]).check_production(production())
