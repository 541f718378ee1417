"""Operator commands: createsuperuser and key rotation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.auth.tokens.keys import KeyRing, write_new_key
from tests.factories import PASSWORD, new_identity

ROOT = Path(__file__).resolve().parents[3]


def _zap_auth(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.auth.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_create_user_makes_an_admin_who_can_sign_in(stack, client) -> None:
    identity = new_identity()
    result = _zap_auth(
        "create-user",
        "--email",
        identity["email"],
        "--username",
        identity["username"],
        "--role",
        "admin",
        env={
            "ZAP_AUTH_DATABASE_URL": stack.auth_settings.database_url,
            "ZAP_NEW_PASSWORD": PASSWORD,
        },
    )
    assert result.returncode == 0, result.stderr
    login = await client.post(
        "/api/v1/auth/login/", json={"email": identity["email"], "password": PASSWORD}
    )
    assert login.status_code == 200
    assert login.json()["user"]["role"] == "admin"


async def test_create_user_refuses_a_taken_email(stack, client) -> None:
    identity = new_identity()
    env = {"ZAP_AUTH_DATABASE_URL": stack.auth_settings.database_url, "ZAP_NEW_PASSWORD": PASSWORD}
    first = _zap_auth(
        "create-user", "--email", identity["email"], "--username", identity["username"], env=env
    )
    assert first.returncode == 0, first.stderr
    again = _zap_auth(
        "create-user", "--email", identity["email"], "--username", "someone_else", env=env
    )
    assert again.returncode == 1
    assert "already registered" in again.stderr


def test_rotation_signs_with_the_newest_key_and_keeps_publishing_the_old(tmp_path: Path) -> None:
    first = write_new_key(tmp_path)
    second = write_new_key(tmp_path)
    ring = KeyRing.load(tmp_path)
    assert ring.active_kid == max(first, second)
    assert {jwk["kid"] for jwk in ring.jwks()} == {first, second}
    assert oct(os.stat(tmp_path / f"{first}.pem").st_mode)[-3:] == "600"
