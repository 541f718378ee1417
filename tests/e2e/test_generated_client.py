"""A Python client generated from the live /openapi.json drives the API as a developer would.

openapi-python-client (what a client developer would run) writes a package from the schema
the gateway serves; the test imports it and goes through the first-day path with it alone:
register, sign in, post, follow, read the home feed, like. Its method names are the schema's
operation ids, its bearer client exists only because the schema declares the scheme, and its
Idempotency-Key arguments only because the schema documents the header.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.factories import PASSWORD, new_identity
from tests.support.stack import Stack
from tests.support.waiting import eventually

PACKAGE = "zap_generated_client"


@pytest.fixture
async def sdk(stack: Stack, tmp_path: Path) -> AsyncIterator[ModuleType]:
    """The client package generated from the running gateway's schema, imported."""
    config = tmp_path / "config.yml"
    # No post hooks: formatting the generated code is not what is tested.
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    generate = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("openapi-python-client")),
        "generate",
        "--url",
        f"{stack.gateway_url}/openapi.json",
        "--meta",
        "none",
        "--config",
        str(config),
        "--output-path",
        str(tmp_path / PACKAGE),
        "--fail-on-warning",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await generate.communicate()
    assert generate.returncode == 0, output.decode(errors="replace")
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def op(sdk: ModuleType, name: str) -> Any:
    """The generated module of one operation, found by its operation id alone."""
    for tag in ("auth", "posts", "users", "feed"):
        try:
            return importlib.import_module(f"{sdk.__name__}.api.{tag}.{name}")
        except ModuleNotFoundError:
            continue
    raise AssertionError(f"no generated operation {name!r}")


async def signed_in(sdk: ModuleType, base_url: str, clients: AsyncExitStack) -> tuple[Any, str]:
    """A new account, signed in: (its bearer client, its user id)."""
    models = importlib.import_module(f"{sdk.__name__}.models")
    anonymous = await clients.enter_async_context(sdk.Client(base_url=base_url))
    identity = new_identity()
    account = await op(sdk, "register").asyncio(
        client=anonymous,
        body=models.RegisterIn(
            email=identity["email"],
            username=identity["username"],
            password=PASSWORD,
            password_confirm=PASSWORD,
        ),
    )
    assert isinstance(account, models.AccountOut), account
    tokens = await op(sdk, "login").asyncio(
        client=anonymous, body=models.LoginIn(email=identity["email"], password=PASSWORD)
    )
    assert isinstance(tokens, models.LoginOut), tokens
    client = sdk.AuthenticatedClient(base_url=base_url, token=tokens.access)
    return await clients.enter_async_context(client), account.id


async def test_a_generated_client_goes_from_register_to_a_liked_post_in_the_home_feed(
    stack: Stack, sdk: ModuleType
) -> None:
    async with AsyncExitStack() as clients:
        await first_day(sdk, stack.gateway_url, clients)


async def first_day(sdk: ModuleType, base_url: str, clients: AsyncExitStack) -> None:
    models = importlib.import_module(f"{sdk.__name__}.models")
    author, author_id = await signed_in(sdk, base_url, clients)
    reader, _ = await signed_in(sdk, base_url, clients)

    followed = await op(sdk, "follow_user").asyncio(author_id, client=reader)
    assert isinstance(followed, models.RelationshipOut), followed
    assert followed.following

    # A retry with the same Idempotency-Key is answered from the first, not posted twice.
    key = secrets.token_hex(8)
    body = models.PostIn(content="Written with a generated client.", hashtags=["sdk"])
    first = await op(sdk, "create_post").asyncio_detailed(
        client=author, body=body, idempotency_key=key
    )
    again = await op(sdk, "create_post").asyncio_detailed(
        client=author, body=body, idempotency_key=key
    )
    assert first.status_code == 201, first.content
    assert isinstance(first.parsed, models.PostOut)
    assert again.parsed.id == first.parsed.id
    assert again.headers["Idempotent-Replayed"] == "true"
    post_id = first.parsed.id

    async def home() -> Any:
        return await op(sdk, "get_home_feed").asyncio(client=reader)

    page = await eventually(
        home, lambda page: any(entry.id == post_id for entry in page.results), timeout=30
    )
    assert isinstance(page, models.HomeFeedPage)
    assert not page.degraded

    liked = await op(sdk, "like_post").asyncio(post_id, client=reader)
    assert isinstance(liked, models.LikeOut), liked
    assert (liked.liked, liked.like_count) == (True, 1)

    # A bad token gets the documented problem, parsed into the generated model.
    forged = sdk.AuthenticatedClient(base_url=base_url, token="not-a-token")
    refused_feed = await op(sdk, "get_home_feed").asyncio_detailed(
        client=await clients.enter_async_context(forged)
    )
    assert refused_feed.status_code == 401
    assert isinstance(refused_feed.parsed, models.Problem)
    assert refused_feed.parsed.status == 401
