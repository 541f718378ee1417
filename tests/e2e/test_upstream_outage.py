"""A service that dies or hangs: the gateway answers 503 within its deadline, stops waiting
on it once its circuit opens, and recovers by itself when the service returns."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx

from services.graph.app import running as running_graph
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack, free_port, gateway_settings, serve_gateway
from tests.support.waiting import eventually
from zapcore.settings import ServiceSettings

TIMEOUT = 1.0
THRESHOLD = 3
RESET = 1.0


@contextlib.asynccontextmanager
async def graph_on(stack: Stack, port: int) -> AsyncIterator[None]:
    """A second graph server on `port`, on the stack's graph database."""
    settings = stack.settings["graph"].model_copy(update={"grpc_port": port})
    assert isinstance(settings, ServiceSettings)
    async with running_graph(stack.platform, settings) as server:  # type: ignore[arg-type]
        await server.start()
        yield


@contextlib.asynccontextmanager
async def black_hole(port: int) -> AsyncIterator[None]:
    """Accepts connections on `port` and never answers: a hung process, as a caller sees it."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", port, reuse_address=True)
    try:
        yield
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_a_hung_service_trips_its_circuit_and_recovers(stack: Stack) -> None:
    port = free_port()
    platform = stack.platform.model_copy(update={"graph_target": f"127.0.0.1:{port}"})
    settings = gateway_settings(
        upstream_timeout_seconds=TIMEOUT,
        breaker_failure_threshold=THRESHOLD,
        breaker_reset_seconds=RESET,
    )
    async with (
        serve_gateway(platform, settings) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        user = await make_user(client)
        followers = f"/api/v1/users/{user.id}/followers/"

        async with graph_on(stack, port):
            assert (await client.get(followers, headers=user.headers)).status_code == 200

        async with black_hole(port):
            # Each call waits out its deadline, then gets a clear answer, never a hang.
            for _ in range(THRESHOLD):
                hung = await client.get(followers, headers=user.headers)
                assert hung.status_code in (503, 504), hung.text
                assert_problem(hung, hung.status_code)
                assert hung.elapsed.total_seconds() < TIMEOUT + 1.0

            # The circuit is open: the gateway no longer waits on the graph service.
            started = time.perf_counter()
            rejected = await client.get(followers, headers=user.headers)
            assert time.perf_counter() - started < TIMEOUT / 2
            assert_problem(rejected, 503, reason="upstream-circuit-open")
            assert 1 <= int(rejected.headers["Retry-After"]) <= RESET + 1
            # Other upstreams are not affected by graph's circuit.
            me = await client.get("/api/v1/auth/me/", headers=user.headers)
            assert me.status_code == 200

        async with graph_on(stack, port):
            recovered = await eventually(
                lambda: client.get(followers, headers=user.headers),
                lambda answer: answer.status_code == 200,
                timeout=20,
                interval=0.2,
            )
            assert recovered.json()["results"] == []


async def test_a_stopped_service_answers_503_at_once(stack: Stack) -> None:
    port = free_port()
    platform = stack.platform.model_copy(update={"graph_target": f"127.0.0.1:{port}"})
    async with (
        serve_gateway(platform, gateway_settings(upstream_timeout_seconds=TIMEOUT)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        user = await make_user(client)
        follow = f"/api/v1/users/{user.id}/following/"
        # Nothing listens on the port: connection refused, a 503 well within the deadline.
        refused = await client.get(follow, headers=user.headers)
        assert_problem(refused, 503)
        assert refused.elapsed.total_seconds() < TIMEOUT
        # The stack is not whole, but this gateway still takes traffic.
        assert (await client.get("/readyz")).status_code == 503
        edge = await client.get("/readyz/edge")
        assert edge.status_code == 200, edge.text
        async with graph_on(stack, port):
            await eventually(
                lambda: client.get(follow, headers=user.headers),
                lambda answer: answer.status_code == 200,
                timeout=20,
                interval=0.2,
            )
