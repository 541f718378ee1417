"""The Prometheus port of every process `make up` runs, in one table.

Production sets the ports in its manifests (9100 services, 9101 workers, one process per pod);
on one machine each process needs its own. A worker's port ends in its service's index, the
service's own is ten above it (feed-worker 9102, feed 9112), so the benchmarks' feed-worker
address stays what it was.

    python -m scripts.metrics_ports exports   # shell `export`s for the ports not already set
    python -m scripts.metrics_ports table     # process -> scrape URL, as configured now
"""

from __future__ import annotations

import os
import sys

HOST = "127.0.0.1"
WORKER_PORTS = {
    "auth-worker": 9101,
    "feed-worker": 9102,
    "media-worker": 9104,
    "moderation-worker": 9105,
    "notification-worker": 9106,
}
SERVICE_PORTS = {
    "auth": 9111,
    "feed": 9112,
    "graph": 9113,
    "media": 9114,
    "moderation": 9115,
    "notification": 9116,
}
METRICS_PORTS = SERVICE_PORTS | WORKER_PORTS


def setting(process: str) -> str:
    """The environment variable that sets `process`'s metrics port."""
    if process.endswith("-worker"):
        return f"ZAP_{process.removesuffix('-worker').upper()}_WORKER_METRICS_PORT"
    return f"ZAP_{process.upper()}_METRICS_PORT"


def exports(environ: dict[str, str]) -> list[str]:
    """`export` lines giving each process its port, unless the environment already sets one."""
    return [
        f"export {setting(process)}={port}"
        for process, port in METRICS_PORTS.items()
        if setting(process) not in environ
    ]


def table(environ: dict[str, str]) -> list[str]:
    """One line per process: where Prometheus scrapes it (or "off" for port 0)."""
    http_host = environ.get("ZAP_GATEWAY_HTTP_HOST", HOST)
    http_port = environ.get("ZAP_GATEWAY_HTTP_PORT", "8080")
    lines = [f"gateway              http://{http_host}:{http_port}/metrics"]
    for process, default in METRICS_PORTS.items():
        port = int(environ.get(setting(process), default))
        where = f"http://{HOST}:{port}/metrics" if port else f"off ({setting(process)}=0)"
        lines.append(f"{process:<20} {where}")
    return lines


def main(argv: list[str]) -> int:
    commands = {"exports": exports, "table": table}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m scripts.metrics_ports {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    print("\n".join(commands[argv[0]](dict(os.environ))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
