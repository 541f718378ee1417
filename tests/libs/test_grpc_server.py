"""GrpcServer over a real socket: identity required, errors mapped, deadlines, graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from zapcore.errors import NotFound
from zapcore.grpc_server import GrpcServer
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
