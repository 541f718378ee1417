"""`python -m gateway`: serve the public API with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from zapcore.logging import configure_logging
from zapcore.metrics import serve_metrics
from zapcore.settings import PlatformSettings
from zapcore.telemetry import configure_telemetry


def main() -> None:
    platform = PlatformSettings()
    settings = GatewaySettings()
    if platform.is_production:
        settings.check_production(platform)
    configure_logging("gateway", platform.log_level)
    serve_metrics(settings.metrics_port)
    configure_telemetry("gateway", platform)
    uvicorn.run(
        create_app(platform, settings),
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For is resolved by our own trusted-proxy rule
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        ws_max_size=settings.ws_max_message_bytes,
        ws_per_message_deflate=settings.ws_per_message_deflate,
    )


if __name__ == "__main__":
    main()
