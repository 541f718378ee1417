"""Factories: real users made through the public API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

PASSWORD = "correct horse battery staple"


@dataclass
class TestUser:
    id: str
    email: str
    username: str
    password: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def new_identity() -> dict[str, str]:
    tag = secrets.token_hex(5)
    return {"email": f"user_{tag}@example.com", "username": f"user_{tag}"}


async def register(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    body = {**new_identity(), "password": PASSWORD, "password_confirm": PASSWORD, **overrides}
    return await client.post("/api/v1/auth/register/", json=body)


async def make_user(client: httpx.AsyncClient, **overrides: Any) -> TestUser:
    """Register and sign in a new user."""
    answer = await register(client, **overrides)
    assert answer.status_code == 201, answer.text
    account = answer.json()
    password = overrides.get("password", PASSWORD)
    tokens = await client.post(
        "/api/v1/auth/login/", json={"email": account["email"], "password": password}
    )
    assert tokens.status_code == 200, tokens.text
    return TestUser(
        id=account["id"],
        email=account["email"],
        username=account["username"],
        password=password,
        access=tokens.json()["access"],
        refresh=tokens.json()["refresh"],
    )


async def make_moderator(client: httpx.AsyncClient, auth_database_url: str) -> TestUser:
    """A new user with the moderator role (set in auth's database, then signed in again)."""
    user = await make_user(client)
    connection = await asyncpg.connect(
        auth_database_url.replace("postgresql+asyncpg", "postgresql")
    )
    try:
        await connection.execute("UPDATE users SET role = 'moderator' WHERE id = $1::uuid", user.id)
    finally:
        await connection.close()
    login = await client.post(
        "/api/v1/auth/login/", json={"email": user.email, "password": user.password}
    )
    user.access = login.json()["access"]
    return user
