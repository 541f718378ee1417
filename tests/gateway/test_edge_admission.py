"""The edge's admission of a request, through a real gateway on real Redis: the address's and
the user's rate limits and the deny-list in one Redis round trip, and an access token's
signature checked once per process while revocation and expiry still stop it at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from services.auth.tokens.keys import KeyRing
from tests import factories
from tests.factories import PASSWORD, make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack, gateway_settings, serve_gateway
from zapcore import access_tokens

ME = "/api/v1/auth/me/"
LOOPBACK = ["127.0.0.1/32"]


@dataclass
class Edge:
    """A gateway of its own, with its Redis round trips counted."""

    http: httpx.AsyncClient
    app: FastAPI
    # One per connection taken from the gateway's pool, whichever client took it (the
    # gateway's own, any library's on the same pool): each is one request-and-answer.
    round_trips: int = 0
    # What the gateway's own client sent: a command alone, or a pipeline of commands.
    sent: list[str] = field(default_factory=list)

    async def trips_of(self, request: Callable[[], Any]) -> tuple[httpx.Response, int, list[str]]:
        """The answer to one request, and the Redis round trips the gateway made for it."""
        self.round_trips, self.sent = 0, []
        answer: httpx.Response = await request()
        return answer, self.round_trips, self.sent


@contextlib.asynccontextmanager
async def edge_gateway(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, **overrides: object
) -> AsyncIterator[Edge]:
    apps: list[FastAPI] = []

    def capturing(*args: Any) -> FastAPI:
        apps.append(create_app(*args))
        return apps[-1]

    monkeypatch.setattr("tests.support.stack.create_app", capturing)
    async with (
        serve_gateway(stack.platform, gateway_settings(**overrides)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        edge = Edge(http, apps[-1])
        _count_requests(edge)
        yield edge


def _count_requests(edge: Edge) -> None:
    redis = edge.app.state.edge.redis
    pool = redis.connection_pool
    take, send_one, open_pipeline = pool.get_connection, redis.execute_command, redis.pipeline

    async def get_connection(*args: Any, **options: Any) -> Any:
        edge.round_trips += 1
        return await take(*args, **options)

    async def execute_command(*args: Any, **options: Any) -> Any:
        edge.sent.append(str(args[0]))
        return await send_one(*args, **options)

    def pipeline(*args: Any, **options: Any) -> Any:
        pipe = open_pipeline(*args, **options)
        send_all = pipe.execute

        async def execute(*eargs: Any, **eoptions: Any) -> Any:
            edge.sent.append(" ".join(str(command[0][0]) for command in pipe.command_stack))
            return await send_all(*eargs, **eoptions)

        pipe.execute = execute
        return pipe

    pool.get_connection = get_connection
    redis.execute_command = execute_command
    redis.pipeline = pipeline


def from_ip(address: str, user: factories.TestUser | None = None) -> dict[str, str]:
    headers = {"X-Forwarded-For": address}
    return headers | user.headers if user else headers


def assert_rate_limited(answer: httpx.Response) -> int:
    assert_problem(answer, 429, reason="rate-limited")
    wait = int(answer.headers["retry-after"])
    assert wait >= 1
    return wait


# --- one round trip ---------------------------------------------------------------------------


async def test_an_authenticated_read_costs_one_redis_round_trip(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    async with edge_gateway(stack, monkeypatch) as edge:
        for _ in range(3):
            answer, trips, sent = await edge.trips_of(
                lambda: edge.http.get(ME, headers=user.headers)
            )
            assert answer.status_code == 200, answer.text
            assert trips == 1, sent
            # The token's and its family's entries, then the address's and the user's limits.
            assert sent == ["EXISTS EXISTS EVALSHA EVALSHA"]


async def test_an_anonymous_request_costs_one_redis_round_trip(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    async with edge_gateway(stack, monkeypatch) as edge:
        answer, trips, sent = await edge.trips_of(
            lambda: edge.http.get(f"/api/v1/users/{user.id}/")
        )
        assert answer.status_code == 200, answer.text
        assert (trips, sent) == (1, ["EVALSHA"])


# --- rate limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["3/minute;1000/second", "1000/minute;3/second"])
async def test_the_users_limit_refuses_at_the_limit_whichever_rule_is_spent(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    user = await make_user(client)
    async with edge_gateway(stack, monkeypatch, rate_limit_user=spec) as edge:
        answers = [await edge.http.get(ME, headers=user.headers) for _ in range(4)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        wait = assert_rate_limited(answers[3])
        assert wait <= (60 if "3/minute" in spec else 1)
        # Another user has a budget of their own.
        other = await make_user(client)
        assert (await edge.http.get(ME, headers=other.headers)).status_code == 200


@pytest.mark.parametrize("spec", ["3/minute;1000/second", "1000/minute;3/second"])
async def test_the_address_limit_refuses_at_the_limit_whichever_rule_is_spent(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    user = await make_user(client)
    profile = f"/api/v1/users/{user.id}/"
    async with edge_gateway(
        stack, monkeypatch, rate_limit_ip=spec, trusted_proxies=LOOPBACK
    ) as edge:
        # Anonymous and signed-in requests from one address share its budget.
        answers = [
            await edge.http.get(profile, headers=from_ip("198.51.100.7")),
            await edge.http.get(ME, headers=from_ip("198.51.100.7", user)),
            await edge.http.get(profile, headers=from_ip("198.51.100.7", user)),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert_rate_limited(await edge.http.get(profile, headers=from_ip("198.51.100.7")))
        assert_rate_limited(await edge.http.get(ME, headers=from_ip("198.51.100.7", user)))
        assert (await edge.http.get(ME, headers=from_ip("198.51.100.8", user))).status_code == 200


async def test_a_request_refused_by_its_address_does_not_spend_the_users_budget(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    async with edge_gateway(
        stack,
        monkeypatch,
        rate_limit_ip="2/minute",
        rate_limit_user="3/minute",
        trusted_proxies=LOOPBACK,
    ) as edge:
        first = [await edge.http.get(ME, headers=from_ip("198.51.100.1", user)) for _ in range(2)]
        assert [a.status_code for a in first] == [200, 200]
        for _ in range(3):
            assert_rate_limited(await edge.http.get(ME, headers=from_ip("198.51.100.1", user)))
        # Two of the user's three requests are spent, whatever the refused ones tried.
        answer = await edge.http.get(ME, headers=from_ip("198.51.100.2", user))
        assert answer.status_code == 200, answer.text
        assert_rate_limited(await edge.http.get(ME, headers=from_ip("198.51.100.3", user)))


async def test_a_request_refused_by_one_rule_does_not_spend_the_others(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    async with edge_gateway(stack, monkeypatch, rate_limit_user="6/minute;2/second") as edge:
        burst = [await edge.http.get(ME, headers=user.headers) for _ in range(6)]
        assert [a.status_code for a in burst[:2]] == [200, 200]
        for answer in burst[2:]:
            assert_rate_limited(answer)  # refused by the second rule, not counted by the first
        await asyncio.sleep(2.1)
        calm = [await edge.http.get(ME, headers=user.headers) for _ in range(2)]
        assert [a.status_code for a in calm] == [200, 200]


async def test_limits_let_requests_through_when_redis_is_down_but_tokens_fail_closed(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    # Nothing listens on port 1: every connection is refused, as with Redis down.
    platform = stack.platform.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with (
        serve_gateway(platform, gateway_settings()) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        anonymous = await http.get(f"/api/v1/users/{user.id}/")
        assert anonymous.status_code == 200, anonymous.text
        assert_problem(await http.get(ME, headers=user.headers), 503)


# --- revocation and expiry of remembered tokens -----------------------------------------------


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tokens whose signature a gateway of this process checked, in order."""
    checked: list[str] = []
    decode = access_tokens.decode_verified

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(access_tokens, "decode_verified", counting)
    return checked


async def test_a_token_is_verified_once_per_process(
    stack: Stack,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    signature_checks: list[str],
) -> None:
    user = await make_user(client)
    async with edge_gateway(stack, monkeypatch) as edge:
        signature_checks.clear()
        for _ in range(5):
            assert (await edge.http.get(ME, headers=user.headers)).status_code == 200
        assert signature_checks == [user.access]


async def test_a_logged_out_token_is_refused_at_once_though_remembered(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    async with edge_gateway(stack, monkeypatch) as edge:
        assert (await edge.http.get(ME, headers=user.headers)).status_code == 200
        logout = await edge.http.post(
            "/api/v1/auth/logout/", headers=user.headers, json={"refresh": user.refresh}
        )
        assert logout.status_code == 204, logout.text
        assert_problem(await edge.http.get(ME, headers=user.headers), 401, reason="token-revoked")


async def test_a_reused_refresh_token_stops_its_familys_remembered_tokens(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    async with edge_gateway(stack, monkeypatch) as edge:
        rotated = await edge.http.post("/api/v1/auth/refresh/", json={"refresh": user.refresh})
        assert rotated.status_code == 200, rotated.text
        newer = {"Authorization": f"Bearer {rotated.json()['access']}"}
        for headers in (user.headers, newer):
            assert (await edge.http.get(ME, headers=headers)).status_code == 200
        # The first refresh token again: stolen, so every token of the login is refused.
        await edge.http.post("/api/v1/auth/refresh/", json={"refresh": user.refresh})
        for headers in (user.headers, newer):
            assert_problem(await edge.http.get(ME, headers=headers), 401, reason="token-revoked")


async def test_deleting_the_account_stops_every_remembered_token_of_the_user(
    stack: Stack, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    second_login = await client.post(
        "/api/v1/auth/login/", json={"email": user.email, "password": PASSWORD}
    )
    other_session = {"Authorization": f"Bearer {second_login.json()['access']}"}
    async with edge_gateway(stack, monkeypatch) as edge:
        for headers in (user.headers, other_session):
            assert (await edge.http.get(ME, headers=headers)).status_code == 200
        deletion = await edge.http.request(
            "DELETE", ME, headers=user.headers, json={"password": PASSWORD}
        )
        assert deletion.status_code == 202, deletion.text
        for headers in (user.headers, other_session):
            assert_problem(await edge.http.get(ME, headers=headers), 401)


async def test_an_expired_token_is_refused_though_remembered(
    stack: Stack,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    signature_checks: list[str],
) -> None:
    user = await make_user(client)
    ring = KeyRing.load(stack.auth_settings.signing_keys_dir)
    now = int(time.time())
    claims = {
        "iss": "zap-auth",
        "aud": "zap-api",
        "sub": user.id,
        "iat": now,
        "exp": now + 2,
        "jti": str(uuid.uuid4()),
        "typ": "access",
        "role": "user",
    }
    token = jwt.encode(
        claims, ring.signing_key, algorithm="ES256", headers={"kid": ring.active_kid}
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with edge_gateway(stack, monkeypatch) as edge:
        assert (await edge.http.get(ME, headers=headers)).status_code == 200
        assert (await edge.http.get(ME, headers=headers)).status_code == 200
        assert signature_checks.count(token) == 1  # remembered
        await asyncio.sleep(max(0.0, now + 2.2 - time.time()))
        assert_problem(await edge.http.get(ME, headers=headers), 401, reason="invalid-token")


async def test_the_memory_of_verified_tokens_is_bounded(
    stack: Stack,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    signature_checks: list[str],
) -> None:
    users = [await make_user(client) for _ in range(3)]
    async with edge_gateway(stack, monkeypatch, verified_tokens_remembered=2) as edge:
        for user in users:
            assert (await edge.http.get(ME, headers=user.headers)).status_code == 200
        signature_checks.clear()
        for user in reversed(users):
            assert (await edge.http.get(ME, headers=user.headers)).status_code == 200
        # The two most recent were remembered; the oldest had been forgotten.
        assert signature_checks == [users[0].access]
