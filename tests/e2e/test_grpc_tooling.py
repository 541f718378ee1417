"""What grpcurl needs from a service: reflection (v1 and v1alpha) and a minted identity.

A reflection client lists a running service's methods over a real socket, builds a request
from the descriptors it was sent (no generated stubs, as grpcurl does) and calls it with the
header `python -m scripts.identity` prints; an identity signed with another secret, an
expired one and none at all are refused.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from scripts.identity import header
from tests.factories import make_user
from tests.support.stack import TEST_SECRET, Stack
from zapcore.identity import Identity
from zapcore.settings import PlatformSettings

ROOT = Path(__file__).resolve().parents[2]
V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


async def minted(secret: str, *arguments: str) -> tuple[str, str]:
    """The metadata `python -m scripts.identity` prints, run as an operator would."""
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.identity",
        *arguments,
        cwd=ROOT,
        env={**os.environ, "ZAP_INTERNAL_SECRET": secret},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await command.communicate()
    assert command.returncode == 0, err.decode()
    key, _, value = out.decode().strip().partition(": ")
    return key, value


def reflected_call(target: str, method: str, metadata: list[tuple[str, str]]) -> str:
    """Call `method` ("pkg.Service/Method", empty request) knowing only what reflection
    says; its answer as text, or the refusal's status code name."""
    with grpc.insecure_channel(target) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service_name, method_name = method.split("/")
        described = pool.FindServiceByName(service_name).methods_by_name[method_name]
        request_class = GetMessageClass(described.input_type)
        response_class = GetMessageClass(described.output_type)
        call = channel.unary_unary(
            f"/{method}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        try:
            return str(call(request_class(), metadata=metadata, timeout=10))
        except grpc.RpcError as refused:
            return str(refused.code().name)


def v1_reflection(
    target: str, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    """Answers of the v1 reflection service. v1's messages are v1alpha's under another
    package name (same fields and numbers), so v1alpha's classes encode v1's bytes."""
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(
            V1_METHOD,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        return list(call(iter(requests), timeout=10))


@pytest.mark.parametrize(
    ("service", "name"),
    [("auth", "zap.auth.v1.AuthService"), ("feed", "zap.feed.v1.FeedService")],
)
async def test_reflection_v1_and_v1alpha_list_the_service(
    stack: Stack, service: str, name: str
) -> None:
    target = stack.targets[service]

    with grpc.insecure_channel(target) as channel:
        v1alpha = await asyncio.to_thread(
            lambda: set(ProtoReflectionDescriptorDatabase(channel).get_services())
        )
    listed, described = await asyncio.to_thread(
        v1_reflection,
        target,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.reflection.v1.ServerReflection"
        ),
    )

    v1 = {entry.name for entry in listed.list_services_response.service}
    expected = {
        name,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert v1 == v1alpha == expected
    # The v1 service can be described too (grpcurl's `describe` walks every listed one).
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    v1_file = next(file for file in files if file.package == "grpc.reflection.v1")
    (v1_service,) = v1_file.service
    assert [method.name for method in v1_service.method] == ["ServerReflectionInfo"]
    assert v1_service.method[0].input_type == ".grpc.reflection.v1.ServerReflectionRequest"


async def test_a_minted_identity_calls_a_service_and_forged_or_expired_ones_are_refused(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as client:
        user = await make_user(client)
    target = stack.targets["auth"]
    method = "zap.auth.v1.AuthService/GetAccount"

    key, assertion = await minted(TEST_SECRET, "--user", user.id, "--role", "user", "--ttl", "300")
    assert key == "x-zap-identity"
    answer = await asyncio.to_thread(reflected_call, target, method, [(key, assertion)])
    assert user.email in answer
    assert user.id in answer

    _, forged = await minted("another-secret-" + "y" * 40, "--user", user.id)
    expired = header(
        Identity(service="operator", user_id=uuid.UUID(user.id)),
        ttl_seconds=-60,
        platform=PlatformSettings.model_validate({"internal_secret": TEST_SECRET}),
    ).partition(": ")[2]
    for refused in ([(key, forged)], [(key, expired)], []):
        answer = await asyncio.to_thread(reflected_call, target, method, refused)
        assert answer == "UNAUTHENTICATED"
