"""Compose's health checks are real programs: run them against a real gRPC health service and a
real HTTP server, and see them pass when healthy and fail when not."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def health_check_code(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return str(test[3])


def exit_code(code: str, argument: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", code, argument], capture_output=True, timeout=30, check=False
    )
    return result.returncode


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None)


class _Answer(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_grpc_check_passes_only_while_serving(
    compose_services: dict[str, dict[str, Any]],
    health_server: tuple[int, health.HealthServicer],
) -> None:
    port, servicer = health_server
    codes = {health_check_code(compose_services[s]) for s in ("auth", "feed", "notification")}
    (code,) = codes  # one check for every service, only the port differs
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert exit_code(code, str(port)) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert exit_code(code, str(port)) != 0


def test_grpc_check_fails_when_nothing_listens(
    compose_services: dict[str, dict[str, Any]],
    health_server: tuple[int, health.HealthServicer],
) -> None:
    port, _ = health_server
    code = health_check_code(compose_services["auth"])
    # health_server's port is taken by it; one above it is almost certainly free.
    assert exit_code(code, str(port + 1)) != 0


def test_http_check_passes_on_200_and_fails_on_503(
    compose_services: dict[str, dict[str, Any]], http_server: ThreadingHTTPServer
) -> None:
    code = health_check_code(compose_services["gateway"])
    assert code == health_check_code(compose_services["feed-worker"])
    url = f"http://127.0.0.1:{http_server.server_address[1]}/readyz"
    _Answer.status = 200
    assert exit_code(code, url) == 0
    _Answer.status = 503
    try:
        assert exit_code(code, url) != 0
    finally:
        _Answer.status = 200
