"""The hot reads' JSON, rendered straight from protobuf, is the document the schema models
give for the same answer: every field, every type, times in the same notation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from gateway import render
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
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_an_entry_is_the_model_s_document(case: str) -> None:
    item, media = CASES[case], {PHOTO.id: PHOTO}
    model = FeedEntryOut.from_proto(item.post, AUTHOR, media, score=item.score)
    rendered = orjson.loads(
        orjson.dumps(render.feed_entry(item, AUTHOR, media), option=orjson.OPT_UTC_Z)
    )
    assert rendered == model.model_dump(mode="json")


def test_a_page_response_validates_as_the_declared_schema() -> None:
    results = [render.feed_entry(e, AUTHOR, {PHOTO.id: PHOTO}) for e in CASES.values()]
    response = render.json_response({"results": results, "next_cursor": None, "degraded": True})
    assert response.media_type == "application/json"
    page = HomeFeedPage.model_validate_json(response.body)
    assert orjson.loads(response.body) == page.model_dump(mode="json")
