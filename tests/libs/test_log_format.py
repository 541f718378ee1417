"""`ZAP_LOG_FORMAT`: JSON lines by default, readable lines for a developer's terminal."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pydantic
import pytest
import structlog

from zapcore.logging import configure_logging, get_logger
from zapcore.settings import PlatformSettings

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """What reached stdout once the test configured logging as a process does at start-up."""
    yield lambda: capsys.readouterr().out
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


def log_a_request_and_a_failure() -> None:
    get_logger("test").info("post.created", post_id="p1", password="hunter2")
    logging.getLogger("uvicorn.error").warning("slow client %s", "1.2.3.4:5")
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        get_logger("test").exception("post.failed")


def test_by_default_every_line_is_one_json_object(
    logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZAP_LOG_FORMAT", raising=False)
    configure_logging("feed", "INFO")
    log_a_request_and_a_failure()

    records = [json.loads(line) for line in logs().splitlines() if line.startswith("{")]
    assert [r["event"] for r in records] == ["post.created", "slow client 1.2.3.4:5", "post.failed"]
    assert all(r["service"] == "feed" for r in records)
    assert records[0]["password"] == "[redacted]"
    assert "ValueError" in records[2]["exception"]


def test_console_format_prints_readable_lines_with_the_same_fields(
    logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZAP_LOG_FORMAT", "console")
    configure_logging("feed", "INFO")
    log_a_request_and_a_failure()

    text = logs()
    lines = text.splitlines()
    assert not any(line.startswith("{") for line in lines)
    created = next(line for line in lines if "post.created" in line)
    assert "[info" in created
    assert "post_id=p1" in created
    assert "service=feed" in created
    assert "password=[redacted]" in created
    assert any("[warning" in line and "slow client 1.2.3.4:5" in line for line in lines)
    # The traceback follows its line, redacted like everything else.
    assert "Traceback (most recent call last)" in text
    assert "ValueError: bad token [redacted]" in text
    assert "hunter2" not in text
    assert JWT not in text
    # Piped output (honcho, a file): no colour escape codes.
    assert "\x1b[" not in text


def test_an_unknown_log_format_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAP_LOG_FORMAT", "pretty")
    with pytest.raises(pydantic.ValidationError, match="log_format"):
        PlatformSettings()
