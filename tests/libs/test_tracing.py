from zapcore.tracing import continue_or_start, parse_traceparent

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_valid_traceparent_is_continued_with_a_new_span() -> None:
    trace = continue_or_start(VALID)
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace.span_id != "00f067aa0ba902b7"
    assert trace.traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


def test_invalid_traceparents_start_a_new_trace() -> None:
    for bad in [
        None,
        "",
        "garbage",
        VALID.replace("00-", "ff-", 1),
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ]:
        assert parse_traceparent(bad) is None
        assert len(continue_or_start(bad).trace_id) == 32
