"""Under `make up` every process serves Prometheus metrics on a port of its own, and the
start-up banner lists where (scripts/metrics_ports.py is the one table)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from scripts.metrics_ports import METRICS_PORTS, setting
from tests.support.processes import process_stack, wait_for_port
from tests.support.stack import free_port
from zap.graph.v1 import graph_pb2, graph_pb2_grpc
from zapcore.settings import PlatformSettings

ROOT = Path(__file__).resolve().parents[2]


def procfile_processes() -> list[str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return [line.partition(":")[0] for line in lines if line.strip()]


def metrics_ports(*command: str, env: dict[str, str] | None = None) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ZAP_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "scripts.metrics_ports", *command],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_every_process_but_the_gateway_and_the_dev_store_has_a_port_of_its_own() -> None:
    # The gateway serves /metrics on its HTTP port; s3 is moto, not ours.
    assert set(METRICS_PORTS) == set(procfile_processes()) - {"gateway", "s3"}
    assert len(set(METRICS_PORTS.values())) == len(METRICS_PORTS)
    platform = PlatformSettings()
    taken = {8080, 50080} | {
        int(getattr(platform, f"{name}_target").rpartition(":")[2])
        for name in ("auth", "feed", "graph", "media", "moderation", "notification")
    }
    assert not taken & set(METRICS_PORTS.values())


def test_the_start_up_list_names_every_process_and_its_url() -> None:
    listed = dict(line.split(maxsplit=1) for line in metrics_ports("table").splitlines())
    assert listed["gateway"] == "http://127.0.0.1:8080/metrics"
    for process, port in METRICS_PORTS.items():
        assert listed[process] == f"http://127.0.0.1:{port}/metrics"


def test_a_port_set_in_the_environment_wins_and_the_list_says_so() -> None:
    # What `scripts/up` does with the exports, in the shell it runs in.
    shell = subprocess.run(
        ["bash", "-c", 'eval "$(python -m scripts.metrics_ports exports)"; env'],
        cwd=ROOT,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "ZAP_FEED_METRICS_PORT": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    environ = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert environ["ZAP_FEED_METRICS_PORT"] == "0"
    assert environ["ZAP_GRAPH_METRICS_PORT"] == str(METRICS_PORTS["graph"])
    listed = metrics_ports("table", env={"ZAP_FEED_METRICS_PORT": "0"})
    assert "off (ZAP_FEED_METRICS_PORT=0)" in listed


async def test_a_service_started_with_its_port_serves_its_grpc_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {setting("graph"): str(port)}
    async with process_stack(tmp_path, "http://127.0.0.1:1", env=env, only=("graph",)) as (
        running,
        _,
        _,
    ):
        await wait_for_port(port, 60)
        grpc_port = int(running.env["ZAP_GRAPH_GRPC_PORT"])
        await wait_for_port(grpc_port, 60)
        # A call without an internal identity: refused, and counted like any other call.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            call = graph_pb2_grpc.GraphServiceStub(channel).Follow(graph_pb2.FollowRequest())
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        async with httpx.AsyncClient(timeout=10) as client:
            scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "# TYPE zap_grpc_server_handling_seconds histogram" in scraped.text
    assert (
        'zap_grpc_server_handled_total{grpc_code="UNAUTHENTICATED",grpc_method="Follow",'
        'grpc_service="zap.graph.v1.GraphService"} 1.0'
    ) in scraped.text
