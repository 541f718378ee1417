"""What a log line may carry: no credential, whoever logs it (see also
tests/e2e/test_notifications_log_secrets.py, on the real processes' output)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from zapcore.logging import configure_logging, get_logger, redact

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'1.2.3.4:5 - "WebSocket /ws/notifications/?token={JWT}&cursor=c" [accepted]', JWT),
        ("GET /b/k?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA%2Fx HTTP/1.1", "deadbeef"),
        ("upload?x-amz-security-token=sessiontoken", "sessiontoken"),
        ("Authorization: Bearer opaque-token-value", "opaque-token-value"),
        ('{"password": "hunter2", "email": "a@b.c"}', "hunter2"),
        ("retry with refresh_token=r3fr3sh", "r3fr3sh"),
        (f"a token on its own: {JWT}", JWT),
    ],
)
def test_credentials_in_a_line_are_masked(line: str, secret: str) -> None:
    masked = redact(line)
    assert secret not in masked
    assert "[redacted]" in masked


def test_what_is_no_secret_is_left_alone() -> None:
    line = '1.2.3.4:5 - "GET /api/v1/feed/explore/?hashtag=zap&cursor=abc HTTP/1.1" 200'
    assert redact(line) == line


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stdout", buffer)
    configure_logging("test", "INFO")
    yield buffer
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


def test_uvicorn_and_our_own_fields_reach_the_output_masked(output: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "1.2.3.4:5", f"/ws/notifications/?token={JWT}"
    )
    get_logger("test").info("auth.login", password="hunter2", token_type="access", tokens=3)
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        get_logger("test").exception("failed")
    text = output.getvalue()
    assert "/ws/notifications/?token=[redacted]" in text
    assert JWT not in text
    assert "hunter2" not in text
    assert '"token_type": "access"' in text
    assert '"tokens": 3' in text
