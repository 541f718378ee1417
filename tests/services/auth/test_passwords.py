"""Argon2id password hashing, and stored hashes upgraded when the parameters get stronger."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from services.auth.accounts.repository import UserRepository
from services.auth.passwords.hasher import PasswordHasher
from services.auth.settings import AuthSettings
from tests.factories import PASSWORD, make_user
from zapcore.db import Database

# The cheapest parameters the settings allow: an old deployment's weaker hashes.
WEAK = {"memory_kib": 8192, "time_cost": 1, "parallelism": 1}


def argon2_parameters(digest: str) -> dict[str, int]:
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", digest)
    assert match, f"not an Argon2id hash: {digest[:30]!r}"
    memory, time_cost, parallelism = map(int, match.groups())
    return {"memory_kib": memory, "time_cost": time_cost, "parallelism": parallelism}


def configured(settings: AuthSettings) -> dict[str, int]:
    return {
        "memory_kib": settings.argon2_memory_kib,
        "time_cost": settings.argon2_time_cost,
        "parallelism": settings.argon2_parallelism,
    }


# What a deployment gets when it sets nothing (the environment cannot change these).
DEFAULTS = {
    "memory_kib": AuthSettings.model_fields["argon2_memory_kib"].default,
    "time_cost": AuthSettings.model_fields["argon2_time_cost"].default,
    "parallelism": AuthSettings.model_fields["argon2_parallelism"].default,
}


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(**DEFAULTS, workers=2)
    yield hasher
    hasher.close()


@pytest.fixture
def weak_hasher() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(**WEAK, workers=1)
    yield hasher
    hasher.close()


async def test_hashes_are_argon2id_with_strong_default_parameters(hasher) -> None:
    digest = await hasher.hash(PASSWORD)
    assert digest.startswith("$argon2id$")
    assert PASSWORD not in digest
    parameters = argon2_parameters(digest)
    assert parameters == DEFAULTS
    # The OWASP floor for Argon2id: 19 MiB of memory and two passes.
    assert parameters["memory_kib"] >= 19456
    assert parameters["time_cost"] >= 2


async def test_the_same_password_hashes_differently_each_time(hasher) -> None:
    assert await hasher.hash(PASSWORD) != await hasher.hash(PASSWORD)


async def test_verify_accepts_the_right_password_only(hasher) -> None:
    digest = await hasher.hash(PASSWORD)
    assert await hasher.verify(PASSWORD, digest)
    for wrong in [PASSWORD + " ", PASSWORD.upper(), "", "correct horse battery"]:
        assert not await hasher.verify(wrong, digest), wrong


async def test_verify_without_a_stored_hash_is_false(hasher) -> None:
    # An unknown email: the dummy hash is checked for timing, but nothing is accepted.
    assert not await hasher.verify("zap-dummy-password-for-timing", None)
    assert not await hasher.verify(PASSWORD, None)


async def test_weaker_hashes_need_a_rehash_and_current_ones_do_not(hasher, weak_hasher) -> None:
    assert hasher.needs_rehash(await weak_hasher.hash(PASSWORD))
    assert not hasher.needs_rehash(await hasher.hash(PASSWORD))
    # A hash from older parameters still verifies, so its owner can sign in to upgrade it.
    assert await hasher.verify(PASSWORD, await weak_hasher.hash(PASSWORD))


# --- rehash on login, through the running stack ---------------------------------------------


@pytest.fixture
async def auth_db(stack) -> AsyncIterator[Database]:
    db = Database(stack.auth_settings.database_url, pool_size=1)
    yield db
    await db.dispose()


async def stored_hash(db: Database, user_id: str) -> str:
    async with db.read_only() as session:
        user = await UserRepository(session).get(uuid.UUID(user_id))
    assert user is not None
    return user.password_hash


async def test_a_successful_login_upgrades_a_weaker_hash(
    stack, client, auth_db, weak_hasher
) -> None:
    user = await make_user(client)
    async with auth_db.unit_of_work() as session:
        await UserRepository(session).set_password_hash(
            uuid.UUID(user.id), await weak_hasher.hash(PASSWORD)
        )
    assert argon2_parameters(await stored_hash(auth_db, user.id)) == WEAK

    login = await client.post(
        "/api/v1/auth/login/", json={"email": user.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text

    upgraded = await stored_hash(auth_db, user.id)
    assert argon2_parameters(upgraded) == configured(stack.auth_settings)
    again = await client.post(
        "/api/v1/auth/login/", json={"email": user.email, "password": PASSWORD}
    )
    assert again.status_code == 200
    assert await stored_hash(auth_db, user.id) == upgraded  # no rehash once it is current


async def test_a_failed_login_leaves_a_weaker_hash_alone(client, auth_db, weak_hasher) -> None:
    user = await make_user(client)
    weak = await weak_hasher.hash(PASSWORD)
    async with auth_db.unit_of_work() as session:
        await UserRepository(session).set_password_hash(uuid.UUID(user.id), weak)
    wrong = {"email": user.email, "password": "not the password at all"}
    assert (await client.post("/api/v1/auth/login/", json=wrong)).status_code == 401
    assert await stored_hash(auth_db, user.id) == weak
