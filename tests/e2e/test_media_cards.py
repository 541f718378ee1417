"""Posts carry their images from feed (media's read model in Redis, zapcore.media_cards):
a page with pictures is one call from the gateway to feed, and needs no media service."""

from __future__ import annotations

import httpx

from tests.e2e.feed_helpers import follow, post, wait_in_home
from tests.factories import make_user
from tests.support.media import jpeg_with_gps, ready, uploaded
from tests.support.stack import Stack, free_port, gateway_settings, serve_gateway


async def test_pages_show_their_images_through_a_gateway_that_cannot_reach_media(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author, reader = await make_user(client), await make_user(client)
    await follow(client, reader, author)
    media = await ready(
        client, author, (await uploaded(client, author, jpeg_with_gps(640, 480)))["id"]
    )
    created = await post(client, author, "a picture", media_ids=[media["id"]])
    await wait_in_home(client, reader, created["id"])
    assert created["media"]

    # Nothing listens where this gateway looks for media: every GetMedias of its own fails,
    # and a post it had to hydrate itself would come back without its images.
    platform = stack.platform.model_copy(update={"media_target": f"127.0.0.1:{free_port()}"})
    async with (
        serve_gateway(platform, gateway_settings()) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as cut_off,
    ):
        home = await cut_off.get("/api/v1/feed/home/", headers=reader.headers)
        assert home.status_code == 200, home.text
        entry = next(e for e in home.json()["results"] if e["id"] == created["id"])
        assert entry["media"] == created["media"]

        single = await cut_off.get(f"/api/v1/posts/{created['id']}/", headers=reader.headers)
        assert single.json()["media"] == created["media"]

        timeline = await cut_off.get(f"/api/v1/users/{author.id}/posts/", headers=reader.headers)
        shown = next(p for p in timeline.json()["results"] if p["id"] == created["id"])
        assert shown["media"] == created["media"]


async def test_a_comment_list_shows_each_author_as_they_are_now(client: httpx.AsyncClient) -> None:
    author, commenter = await make_user(client), await make_user(client)
    created = await post(client, author, "say something")
    comments = f"/api/v1/posts/{created['id']}/comments/"
    said = await client.post(comments, json={"content": "hello"}, headers=commenter.headers)
    assert said.status_code == 201, said.text
    assert said.json()["author"]["username"] == commenter.username

    renamed = await client.patch(
        "/api/v1/auth/me/", json={"display_name": "Now Someone Else"}, headers=commenter.headers
    )
    assert renamed.status_code == 200, renamed.text
    listed = (await client.get(comments, headers=author.headers)).json()["results"]
    assert [c["author"]["display_name"] for c in listed] == ["Now Someone Else"]
