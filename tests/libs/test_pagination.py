import pytest

from zapcore.errors import InvalidArgument
from zapcore.pagination import CursorCodec, page_limit


def test_cursor_round_trips_and_is_opaque() -> None:
    codec = CursorCodec("secret", "posts")
    cursor = codec.encode({"score": 1.5, "id": "abc"})
    assert "abc" not in cursor
    assert codec.decode(cursor) == {"score": 1.5, "id": "abc"}


@pytest.mark.parametrize("forged", ["", "abc", "!!!!", "x" * 5000])
def test_garbage_cursors_are_invalid_argument(forged: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        CursorCodec("secret", "posts").decode(forged)
    assert raised.value.fields == {"cursor": "not a cursor issued for this list"}


def test_a_cursor_from_another_list_or_secret_is_refused() -> None:
    cursor = CursorCodec("secret", "followers").encode({"id": "1"})
    with pytest.raises(InvalidArgument):
        CursorCodec("secret", "following").decode(cursor)
    with pytest.raises(InvalidArgument):
        CursorCodec("other-secret", "followers").decode(cursor)


def test_an_edited_cursor_is_refused() -> None:
    codec = CursorCodec("secret", "posts")
    cursor = codec.encode({"id": "1"})
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    with pytest.raises(InvalidArgument):
        codec.decode(tampered)


@pytest.mark.parametrize(("asked", "given"), [(0, 20), (1, 1), (100, 100)])
def test_page_limit_accepts_one_to_a_hundred(asked: int, given: int) -> None:
    assert page_limit(asked) == given


@pytest.mark.parametrize("asked", [-1, 101, 10**6])
def test_page_limit_refuses_out_of_range(asked: int) -> None:
    with pytest.raises(InvalidArgument):
        page_limit(asked)
