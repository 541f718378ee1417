"""Structured logs; every line carries the service name and the current trace id.

JSON by default (what collectors parse); `ZAP_LOG_FORMAT=console` renders the same events as
aligned, readable lines for development.

No secret reaches a line: every record (ours, uvicorn's, any library's) goes through
`redact`, which masks the secret parameters of query strings (a WebSocket's `?token=`, a
presigned URL's signature), bearer credentials, anything shaped like a JWT, and the value
of any field whose name says it is a secret (password, token, secret, key...).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from zapcore.settings import LogFormat, PlatformSettings
from zapcore.tracing import current_trace

REDACTED = "[redacted]"

# Query-string parameters (and key=value pairs anywhere) whose value is a credential: tokens,
# passwords, signing keys, and what makes a presigned S3 URL or POST usable.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>(?:^|(?<=[?&;\s\"'{,]))"
    r"(?:[\w.-]*(?:token|password|passwd|secret|signature|credential|api[_-]?key)[\w.-]*"
    r"|key|sig|policy|code|x-amz-[\w-]+|authorization))"
    r"(?P<sep>=|%3D)(?P<value>[^&\s\"';,]+)",
    re.IGNORECASE,
)
# The same names as JSON members: a request or response body quoted in a message.
_SECRET_MEMBER = re.compile(
    r'(?P<name>"[\w.-]*(?:token|password|passwd|secret|signature|credential)[\w.-]*"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[\w.~+/=-]+", re.IGNORECASE)
# A JWT (or any JWS): base64url JSON header, payload, signature.
_JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*")
# Fields whose value is a secret, whatever it looks like.
_SECRET_FIELD = re.compile(
    r"password|passwd|secret|token|authorization|cookie|signature|credential|"
    r"(?:^|_)(?:private|signing|cursor|access|api)_?key$",
    re.IGNORECASE,
)
# Fields that name a secret without holding one (a count, a kind, an id).
_NOT_SECRET_FIELD = re.compile(r"(?:_count|_type|_kind|_id|_ids|s_revoked)$", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with credentials in it (query parameters, bearer values, JWTs) masked."""
    if not text:
        return text
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    text = _SECRET_MEMBER.sub(lambda m: f'{m["name"]}"{REDACTED}"', text)
    return _SECRET_PARAMETER.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)


def _redact_value(name: str, value: Any) -> Any:
    secret_name = _SECRET_FIELD.search(name) and not _NOT_SECRET_FIELD.search(name)
    if isinstance(value, str | bytes) and secret_name:
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(name, v) for v in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: every field of the event, redacted (see `redact`)."""
    for name, value in list(event.items()):
        if not name.startswith("_"):
            event[name] = _redact_value(name, value)
    return event


class RedactSecrets(logging.Filter):
    """A stdlib filter that redacts a record's message (for handlers we do not format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# Loggers that log request lines (a WebSocket's URL with its query) on their own.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "httpx")


def _add_trace(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    trace = current_trace()
    if trace is not None:
        event.setdefault("trace_id", trace.trace_id)
        event.setdefault("span_id", trace.span_id)
    return event


def _renderer(log_format: LogFormat) -> Any:
    if log_format is LogFormat.CONSOLE:
        # Colours only on a terminal: piped output (honcho, a file) stays plain text.
        return structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    return structlog.processors.JSONRenderer()


def configure_logging(
    service: str, level: str = "INFO", *, log_format: LogFormat | None = None
) -> None:
    """Route structlog and stdlib logging through one renderer on stdout.

    `log_format` defaults to the `ZAP_LOG_FORMAT` setting, so every process honours it.
    """
    if log_format is None:
        log_format = PlatformSettings().log_format
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        # Last: it also sees the formatted exception and a foreign record's message.
        redact_secrets,
    ]
    # format_exc_info stays in the chain for the console too: a traceback is redacted like
    # any other field before it is printed.
    renderer = _renderer(log_format)
    structlog.configure(
        # Below the level, a call returns before any processor runs: every request and
        # every gRPC call logs at info, which production (and the benchmarks) leave out.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Their own handlers, if something configures any, see redacted records too.
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in server_logger.filters):
            server_logger.addFilter(RedactSecrets())
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    # uvicorn's access log repeats what our request log says, without the trace id.
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger for one module."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
