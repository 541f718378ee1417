"""The hot reads' JSON, rendered straight from protobuf, is the document the schema models
give for the same answer: every field, every type, times in the same notation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import TypeAdapter

from gateway import render
from gateway.schemas.auth import AccountOut
from gateway.schemas.common import when
from gateway.schemas.posts import FeedEntryOut, HomeFeedPage
from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zap.media.v1 import media_pb2

AUTHOR = auth_pb2.User(
    id="01900000-0000-7000-8000-000000000001",
    username="ada",
    display_name="Ada Lovelace \u00e9\u2028",
    avatar_url="https://cdn.example/a.png",
    bio="not shown on posts",
)
PHOTO = media_pb2.Media(
    id="01900000-0000-7000-8000-0000000000aa",
    owner_id=AUTHOR.id,
    mime_type="image/jpeg",
    status=media_pb2.MEDIA_STATUS_READY,
    variants=[
        media_pb2.Variant(
            name=name,
            url=f"https://cdn.example/{name}.jpg",
            mime_type="image/jpeg",
            width=width,
            height=width // 2,
            size_bytes=width * 10,
        )
        for name, width in (("thumbnail", 320), ("medium", 1080), ("original", 4000))
    ],
)


def stamp(moment: datetime) -> Any:
    post = feed_pb2.Post()
    post.created_at.FromDatetime(moment)
    return post.created_at


def entry(**fields: Any) -> feed_pb2.FeedEntry:
    created = fields.pop("created_at", datetime(2026, 12, 3, 11, 52, 20, 851559, tzinfo=UTC))
    post = feed_pb2.Post(id="01900000-0000-7000-8000-0000000000b1", author_id=AUTHOR.id, **fields)
    post.created_at.CopyFrom(stamp(created))
    return feed_pb2.FeedEntry(post=post, score=fields.get("like_count", 0) + 0.125)


CASES = {
    "plain": entry(content="hello"),
    "everything": entry(
        content="a reply with #tags and @ada and a photo",
        hashtags=["tags"],
        mention_ids=[AUTHOR.id],
        media_ids=[PHOTO.id, "01900000-0000-7000-8000-0000000000cc"],  # the second not ready
        parent_post_id="01900000-0000-7000-8000-0000000000b0",
        like_count=2**40,
        comment_count=3,
        share_count=1,
        liked_by_viewer=True,
        shared_by_viewer=True,
    ),
    "whole second": entry(content="x", created_at=datetime(2026, 1, 1, tzinfo=UTC)),
    "unicode, nothing optional": entry(content='\u00e9\u2028\U0001f600 "quoted" \\ </script>'),
    "never set": feed_pb2.FeedEntry(post=feed_pb2.Post(id="p", author_id=AUTHOR.id)),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_an_entry_is_the_model_s_document(case: str) -> None:
    item, media = CASES[case], {PHOTO.id: PHOTO}
    model = FeedEntryOut.from_proto(item.post, AUTHOR, media, score=item.score)
    rendered = orjson.loads(
        orjson.dumps(render.feed_entry(item, AUTHOR, media), option=orjson.OPT_UTC_Z)
    )
    assert rendered == model.model_dump(mode="json")


def _stamp(seconds: int, nanos: int) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (1_796_298_740, 851_559_123),  # nanos beyond the microsecond are cut, not rounded
        (1_796_298_740, 999_999_999),
        (1_796_298_740, 5_000),
        (1_796_298_740, 999),  # under a microsecond: a whole second
        (1_796_298_740, 0),
        (0, 0),
        (-1, 500_000_000),  # before 1970
        (-62_135_596_800, 0),  # 0001-01-01, the first
        (253_402_300_799, 999_999_999),  # 9999-12-31T23:59:59.999999, the last
        (951_782_400, 1_000),  # 2000-02-29
    ],
)
def test_a_time_is_written_as_the_model_writes_it(seconds: int, nanos: int) -> None:
    stamp = _stamp(seconds, nanos)
    expected = TypeAdapter(datetime).dump_json(when(stamp)).decode().strip('"')
    assert render.when_text(stamp) == expected
    assert render.when_text(stamp) == expected  # again, from the cache


@pytest.mark.parametrize(("seconds", "nanos"), [(253_402_300_800, 0), (0, -1), (0, 10**9)])
def test_a_time_out_of_range_is_refused_as_before(seconds: int, nanos: int) -> None:
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        when(_stamp(seconds, nanos))
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        render.when_text(_stamp(seconds, nanos))


def test_a_page_response_validates_as_the_declared_schema() -> None:
    results = [render.feed_entry(e, AUTHOR, {PHOTO.id: PHOTO}) for e in CASES.values()]
    response = render.json_response({"results": results, "next_cursor": None, "degraded": True})
    assert response.media_type == "application/json"
    page = HomeFeedPage.model_validate_json(response.body)
    assert orjson.loads(response.body) == page.model_dump(mode="json")


def _account(role: int, **user: Any) -> auth_pb2.Account:
    account = auth_pb2.Account(
        user=auth_pb2.User(id=AUTHOR.id, **user), email="ada@example.org", role=role
    )
    account.user.created_at.CopyFrom(_stamp(1_796_298_740, 851_559_123))
    return account


ACCOUNTS = {
    "user": _account(auth_pb2.ROLE_USER, username="ada", display_name="Ada \u00e9\u2028"),
    "moderator": _account(auth_pb2.ROLE_MODERATOR, username="mod", bio="b\u00f6", avatar_url="u"),
    "admin": _account(auth_pb2.ROLE_ADMIN, username="root"),
    "a role this gateway does not know": _account(99, username="new"),
    "nothing set": auth_pb2.Account(),
}


@pytest.mark.parametrize("case", ACCOUNTS, ids=list(ACCOUNTS))
def test_an_account_is_the_model_s_document(case: str) -> None:
    item = ACCOUNTS[case]
    response = render.json_response(render.account(item))
    assert orjson.loads(response.body) == AccountOut.from_account(item).model_dump(mode="json")
    assert list(orjson.loads(response.body)) == list(AccountOut.model_fields)  # same key order
