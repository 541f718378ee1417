"""The liveness probe: what a load balancer sees, without the gateway reaching anything."""

from __future__ import annotations

import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings
from zapcore.settings import PlatformSettings


async def test_healthz_answers_ok_in_json_with_the_trace() -> None:
    app = create_app(PlatformSettings(), GatewaySettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"status": "ok"}
    assert answer.headers["traceparent"].startswith("00-")
