"""Prometheus metrics shared by every process (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Buckets tuned for an API whose targets sit between 2 ms and 800 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_SERVER_HANDLED = Counter(
    "zap_grpc_server_handled_total",
    "gRPC calls completed by this server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_SERVER_LATENCY = Histogram(
    "zap_grpc_server_handling_seconds",
    "Time to handle a gRPC call on the server.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
GRPC_CLIENT_LATENCY = Histogram(
    "zap_grpc_client_handling_seconds",
    "Time from sending a gRPC call to its answer, as the caller saw it.",
    ["grpc_service", "grpc_method", "grpc_code"],
    buckets=LATENCY_BUCKETS,
)

# Background work: from a 5 ms event handler to a media job of a minute.
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

JOB_DURATION = Histogram(
    "zap_job_duration_seconds",
    "Time an arq job ran, by queue, function and outcome (success, retry, error).",
    ["queue", "function", "outcome"],
    buckets=JOB_BUCKETS,
)
QUEUE_DEPTH = Gauge(
    "zap_queue_depth",
    "Jobs in an arq queue (waiting, deferred or running), sampled by each of its workers.",
    ["queue"],
)
EVENT_STREAM_PENDING = Gauge(
    "zap_event_stream_pending",
    "Entries of an event stream delivered to a consumer group and not yet acknowledged,"
    " sampled by the group's consumers.",
    ["stream", "group"],
)
EVENT_DEAD_LETTERS = Counter(
    "zap_event_dead_letters_total",
    "Event stream entries moved to the group's dead-letter stream.",
    ["stream", "group"],
)


def split_method(full_method: str) -> tuple[str, str]:
    """('/zap.auth.v1.AuthService/Login') -> ('zap.auth.v1.AuthService', 'Login')."""
    _, _, rest = full_method.partition("/")
    service, _, method = rest.partition("/")
    return service, method


def serve_metrics(port: int) -> None:
    """Expose /metrics on `port` from a background thread (no-op when port is 0)."""
    if port:
        start_http_server(port)
