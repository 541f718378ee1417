"""GrpcServer over a real socket: identity required, errors mapped, deadlines, graceful stop,
shutdown callbacks, and keepalive pings that client and server options agree on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from zapcore.errors import NotFound
from zapcore.grpc_client import CHANNEL_OPTIONS, open_channel
from zapcore.grpc_server import SERVER_OPTIONS, GrpcServer, server_options
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner
from zapcore.rpc_errors import failure_from_rpc_error

SECRET = "t" * 64


async def _slow(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await asyncio.sleep(float(request.decode() or 0))
    return b"done"


async def _missing(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    raise NotFound("no such thing", reason="thing-not-found", fields={"id": "unknown"})


async def _broken(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    raise RuntimeError("database password is hunter2")


def _handler(behaviour: object) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=None, response_serializer=None
    )


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    server = GrpcServer(
        service_names=["test.Probe"],
        signer=IdentitySigner(SECRET),
        host="127.0.0.1",
        port=0,
        default_deadline_seconds=0.3,
        shutdown_grace_seconds=2,
    )
    server.server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Probe",
                {
                    "Slow": _handler(_slow),
                    "Missing": _handler(_missing),
                    "Broken": _handler(_broken),
                },
            ),
        )
    )
    await server.start()
    yield server
    await server.stop()


def _call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(f"/test.Probe/{method}")


def _metadata(secret: str = SECRET) -> tuple[tuple[str, str], ...]:
    return ((IDENTITY_METADATA_KEY, IdentitySigner(secret).sign(Identity(service="tests"))),)


async def test_calls_without_a_valid_identity_are_refused(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for metadata in [(), _metadata("another-secret-" * 4)]:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await _call(channel, "Slow")(b"0", metadata=metadata, timeout=2)
            assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert await _call(channel, "Slow")(b"0", metadata=_metadata(), timeout=2) == b"done"


async def test_domain_errors_carry_their_details(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _call(channel, "Missing")(b"", metadata=_metadata(), timeout=2)
    failure = failure_from_rpc_error(raised.value)
    assert failure.code is grpc.StatusCode.NOT_FOUND
    assert (failure.reason, failure.fields) == ("thing-not-found", {"id": "unknown"})


async def test_unexpected_errors_are_internal_without_leaking(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _call(channel, "Broken")(b"", metadata=_metadata(), timeout=2)
    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert "hunter2" not in (raised.value.details() or "")


async def test_calls_without_a_deadline_get_the_default(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _call(channel, "Slow")(b"5", metadata=_metadata())
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_health_needs_no_identity(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="test.Probe"), timeout=2
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_graceful_stop_reports_not_serving_and_drains(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        in_flight = asyncio.ensure_future(
            _call(channel, "Slow")(b"0.25", metadata=_metadata(), timeout=5)
        )
        await asyncio.sleep(0.05)
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.05)
        status = await server.health.Check(health_pb2.HealthCheckRequest(), None)
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await in_flight == b"done"  # the call that was running finished normally
        await stopping


async def test_shutdown_callbacks_end_open_streams_before_the_drain() -> None:
    """A stream that would run for ever ends when shutdown begins, not at the grace period."""
    ending = asyncio.Event()

    async def endless(
        request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        yield b"first"
        await ending.wait()
        yield b"last"

    server = GrpcServer(
        service_names=["test.Probe"],
        signer=IdentitySigner(SECRET),
        host="127.0.0.1",
        port=0,
        shutdown_grace_seconds=30,
    )
    server.server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Probe",
                {"Endless": grpc.unary_stream_rpc_method_handler(endless)},
            ),
        )
    )

    async def end_streams() -> None:
        ending.set()

    server.on_shutdown(end_streams)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_stream("/test.Probe/Endless")(b"", metadata=_metadata(), timeout=60)
        stream = aiter(call)
        assert await anext(stream) == b"first"
        loop = asyncio.get_running_loop()
        began = loop.time()
        await server.stop()
        assert loop.time() - began < 5  # the grace is 30 s
        assert [item async for item in stream] == [b"last"]
        assert await call.code() is grpc.StatusCode.OK


# --- keepalive -------------------------------------------------------------------------------


async def _connectivity(channel: grpc.aio.Channel, seen: list[str]) -> None:
    """Record every state the channel passes through (a GOAWAY shows as READY -> IDLE)."""
    state = channel.get_state()
    while True:
        seen.append(state.name)
        await channel.wait_for_state_change(state)
        state = channel.get_state()


async def _idle_channel_states(
    client_keepalive_ms: int, server_expects_ms: int
) -> tuple[list[str], int]:
    """The states of a channel that pings every `client_keepalive_ms` while idle for five
    pings, on a server whose options expect pings every `server_expects_ms`; and its port."""
    server = GrpcServer(
        service_names=["test.Probe"],
        signer=IdentitySigner(SECRET),
        host="127.0.0.1",
        port=0,
        options=server_options(client_keepalive_time_ms=server_expects_ms),
    )
    await server.start()
    health_service = health_pb2.DESCRIPTOR.services_by_name["Health"]
    channel = open_channel(
        f"127.0.0.1:{server.port}",
        health_service,
        signer=IdentitySigner(SECRET),
        caller="tests",
        keepalive_time_ms=client_keepalive_ms,
    )
    seen: list[str] = []
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
        watcher = asyncio.create_task(_connectivity(channel, seen))
        # gRPC sends keepalive pings at most once a second, whatever the setting.
        await asyncio.sleep(max(client_keepalive_ms, 1000) * 5.5 / 1000)
        answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        watcher.cancel()
    finally:
        await channel.close()
        await server.stop()
    return seen, server.port


async def test_keepalive_pings_of_an_idle_channel_are_accepted(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Client and server options agree (scaled down from 30 s to 1 s): an idle channel keeps
    its connection, where a server expecting fewer pings closes it with "too_many_pings"."""
    (agreeing, agreeing_port), (disagreeing, disagreeing_port) = await asyncio.gather(
        _idle_channel_states(1000, server_expects_ms=1000),
        # The detector itself: a server that allows one ping in 10 minutes (strikes 3).
        _idle_channel_states(1000, server_expects_ms=900_000),
    )
    assert agreeing == ["READY"]  # never disconnected, so never reconnected
    assert "IDLE" in disagreeing  # GOAWAY too_many_pings, then a reconnect
    # gRPC's own log (stderr) names the connection that received the GOAWAY.
    goaways = [line for line in capfd.readouterr().err.splitlines() if "too_many_pings" in line]
    assert not [line for line in goaways if f":{agreeing_port}" in line]
    assert [line for line in goaways if f":{disagreeing_port}" in line]


def test_production_keepalive_options_agree() -> None:
    client = dict(CHANNEL_OPTIONS)
    server = dict(SERVER_OPTIONS)
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.keepalive_permit_without_calls"] == 1
    assert client["grpc.http2.max_pings_without_data"] == 0
    assert server["grpc.http2.min_ping_interval_without_data_ms"] < client["grpc.keepalive_time_ms"]
    assert server["grpc.http2.max_ping_strikes"] >= 1
