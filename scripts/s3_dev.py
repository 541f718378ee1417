"""The embedded S3-compatible store for development and tests: moto in server mode.

    python -m scripts.s3_dev              # 127.0.0.1:$ZAP_MEDIA_EMBEDDED_S3_PORT (50080)
    python -m scripts.s3_dev --port 0     # any free port; prints "listening on <url>"

Used by `make up` (Procfile) when ZAP_MEDIA_S3_ENDPOINT_URL is empty; with an endpoint
configured it starts nothing and waits, so that honcho keeps the other processes running.
Objects live in memory and are gone when it stops. It enforces none of a presigned POST's
conditions (size range, content type, expiry): the media service re-checks every upload.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading

from services.media.settings import MediaSettings


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def main(argv: list[str] | None = None) -> None:
    settings = MediaSettings()
    parser = argparse.ArgumentParser(description="embedded S3-compatible store (moto)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="0: any free port (default: from settings)")
    args = parser.parse_args(argv)
    if args.port is None and not settings.uses_embedded_store:
        print(f"object store: {settings.s3_endpoint_url} (the embedded store is not needed)")
        _wait_for_signal()
        return
    # Imported here: moto is a development dependency, absent from production images.
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = settings.embedded_s3_port if args.port is None else args.port
    port = port or _free_port(args.host)
    server = ThreadedMotoServer(ip_address=args.host, port=port, verbose=False)
    server.start()
    print(f"listening on http://{args.host}:{port}", flush=True)
    try:
        _wait_for_signal()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
