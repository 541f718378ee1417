"""Uploads through the public API: presign, a real upload to the store, complete, variants,
and posts that carry them."""

from __future__ import annotations

import uuid

import httpx
from redis.asyncio import Redis

from services.media.object_store import ObjectStore
from services.media.settings import MediaSettings
from tests import factories
from tests.e2e.feed_helpers import follow, post, wait_in_home
from tests.factories import make_user
from tests.support.media import (
    TEXT_FILE,
    jpeg_with_gps,
    keys_of,
    metadata_of,
    png,
    presign,
    ready,
    uploaded,
)
from tests.support.media import upload as send_file
from tests.support.problems import assert_problem
from tests.support.stack import Stack
from tests.support.waiting import eventually
from zap.events.v1 import events_pb2
from zapcore.events import FEED, EventPublisher


async def test_the_original_presign_call_returns_an_upload_and_a_media_id(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)
    answer = await presign(client, user, "image/jpeg", 204800)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["media_id"] == body["media"]["id"]
    assert body["media"]["status"] == "pending"
    assert body["media"]["owner_id"] == user.id
    assert body["media"]["variants"] == {}
    assert body["upload"]["method"] == "POST"
    assert body["upload"]["file_field"] == "file"
    assert body["upload"]["url"].startswith("http")
    assert body["upload"]["fields"]["key"] == f"uploads/{user.id}/{body['media_id']}"
    assert {"policy", "x-amz-signature", "Content-Type"} <= set(body["upload"]["fields"])
    assert body["upload"]["expires_at"]


async def test_a_photo_goes_up_and_comes_back_clean_on_the_cdn(
    client: httpx.AsyncClient, store: ObjectStore, stack: Stack
) -> None:
    user = await make_user(client)
    completed = await uploaded(client, user, jpeg_with_gps(1200, 900))
    assert completed["status"] in ("processing", "ready")
    media = await ready(client, user, completed["id"])

    assert set(media["variants"]) == {"thumbnail", "medium", "original"}
    settings = stack.settings["media"]
    assert isinstance(settings, MediaSettings)
    for variant in media["variants"].values():
        assert variant["url"].startswith(settings.public_base_url + "/media/" + user.id + "/")
        key = variant["url"].removeprefix(settings.public_base_url + "/")
        stored = metadata_of(await store.read(key, etag="", max_bytes=10**8))
        assert stored["gps"] == {}
        assert stored["exif"] == {}
        assert stored["size"] == (variant["width"], variant["height"])
    assert media["variants"]["original"]["width"] == 900  # turned upright


async def test_refusals_at_presign_are_problems(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    assert_problem(
        await presign(client, user, "image/svg+xml", 1000),
        422,
        reason="unsupported-media-type",
        fields=("mime_type",),
    )
    assert_problem(
        await presign(client, user, "image/png", 500 * 1024 * 1024),
        422,
        reason="file-too-large",
        fields=("file_size_bytes",),
    )
    assert_problem(await presign(client, user, "image/png", -1), 422, fields=("file_size_bytes",))
    missing = await client.post(
        "/api/v1/media/presign/", json={"mime_type": "image/png"}, headers=user.headers
    )
    assert_problem(missing, 422, fields=("file_size_bytes",))
    unsigned = await client.post(
        "/api/v1/media/presign/", json={"mime_type": "image/png", "file_size_bytes": 10}
    )
    assert_problem(unsigned, 401)


async def test_a_text_file_named_jpg_is_refused_at_completion(
    client: httpx.AsyncClient, store: ObjectStore
) -> None:
    user = await make_user(client)
    answer = await presign(client, user, "image/jpeg", len(TEXT_FILE))
    target = answer.json()["upload"]
    async with httpx.AsyncClient(timeout=30) as browser:
        await send_file(browser, target["url"], target["fields"], TEXT_FILE, filename="cat.jpg")
    media_id = answer.json()["media_id"]
    done = await client.post(f"/api/v1/media/{media_id}/complete/", headers=user.headers)
    assert_problem(done, 422, reason="not-an-image", fields=("file",))
    shown = (await client.get(f"/api/v1/media/{media_id}/", headers=user.headers)).json()
    assert shown["status"] == "failed"
    assert shown["failure_reason"]
    assert await keys_of(store, user.id) == []
    again = await client.post(f"/api/v1/media/{media_id}/complete/", headers=user.headers)
    assert_problem(again, 409, reason="media-failed")


async def test_someone_elses_media_is_not_found(client: httpx.AsyncClient) -> None:
    owner, stranger = await make_user(client), await make_user(client)
    media_id = (await presign(client, owner, "image/png", 1000)).json()["media_id"]
    for answer in (
        await client.get(f"/api/v1/media/{media_id}/", headers=stranger.headers),
        await client.post(f"/api/v1/media/{media_id}/complete/", headers=stranger.headers),
    ):
        assert_problem(answer, 404, reason="media-not-found")
    assert_problem(await client.get("/api/v1/media/not-an-id/", headers=owner.headers), 422)


async def test_completing_twice_is_harmless(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    first = await uploaded(client, user, png(), "image/png")
    second = await client.post(f"/api/v1/media/{first['id']}/complete/", headers=user.headers)
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first["id"]
    assert second.json()["status"] in ("processing", "ready")
    await ready(client, user, first["id"])


async def test_a_post_with_media_urls_carries_the_variant_urls_everywhere(
    client: httpx.AsyncClient,
) -> None:
    author, reader = await make_user(client), await make_user(client)
    await follow(client, reader, author)
    media = await ready(
        client, author, (await uploaded(client, author, jpeg_with_gps(800, 600)))["id"]
    )
    urls = {name: v["url"] for name, v in media["variants"].items()}

    created = await post(
        client, author, "a picture #photo", media_urls=[urls["original"]], hashtags=["photo"]
    )
    assert created["media_ids"] == [media["id"]]
    assert len(created["media"]) == 1
    attached = created["media"][0]
    assert attached["id"] == media["id"]
    assert {name: v["url"] for name, v in attached["variants"].items()} == urls

    fetched = (await client.get(f"/api/v1/posts/{created['id']}/")).json()
    assert fetched["media"] == created["media"]
    await wait_in_home(client, reader, created["id"])
    home = (await client.get("/api/v1/feed/home/", headers=reader.headers)).json()["results"]
    entry = next(e for e in home if e["id"] == created["id"])
    assert entry["media"] == created["media"]
    # By id, the same.
    by_id = await post(client, author, "again", media_ids=[media["id"]])
    assert by_id["media"] == created["media"]
    # A post without media has none.
    assert (await post(client, author, "plain text"))["media"] == []


async def test_posts_refuse_urls_that_are_not_ready_uploads_of_the_author(
    client: httpx.AsyncClient,
) -> None:
    author, other = await make_user(client), await make_user(client)
    media = await ready(client, other, (await uploaded(client, other, png(), "image/png"))["id"])
    theirs = media["variants"]["original"]["url"]

    async def attempt(urls: list[str]) -> httpx.Response:
        return await client.post(
            "/api/v1/posts/",
            json={"content": "mine now", "media_urls": urls},
            headers=author.headers,
        )

    assert_problem(await attempt([theirs]), 422, reason="media-not-usable", fields=("media_ids",))
    assert_problem(
        await attempt(["https://example.com/cat.jpg"]),
        422,
        reason="media-url-unknown",
        fields=("media_urls",),
    )
    forged = theirs.replace("/original.", "/secret.")
    assert_problem(await attempt([forged]), 422, reason="media-url-unknown", fields=("media_urls",))
    pending = (await presign(client, author, "image/png", 100)).json()["media_id"]
    assert_problem(
        await client.post(
            "/api/v1/posts/",
            json={"content": "not yet", "media_ids": [pending]},
            headers=author.headers,
        ),
        422,
        reason="media-not-usable",
    )


# --- media of deleted posts ------------------------------------------------------------------


async def objects_of(store: ObjectStore, owner_id: str, media_id: str) -> list[str]:
    """Every object stored for one media: its raw upload and its variants."""
    return [
        *await store.keys(f"uploads/{owner_id}/{media_id}"),
        *await store.keys(f"media/{owner_id}/{media_id}/"),
    ]


async def media_status(client: httpx.AsyncClient, user: factories.TestUser, media_id: str) -> int:
    return (await client.get(f"/api/v1/media/{media_id}/", headers=user.headers)).status_code


async def wait_media_gone(
    client: httpx.AsyncClient, store: ObjectStore, user: factories.TestUser, media_id: str
) -> None:
    """The record goes first (a tombstone, 404 at once), then the objects."""
    await eventually(lambda: media_status(client, user, media_id), lambda code: code == 404)
    await eventually(lambda: objects_of(store, user.id, media_id), lambda keys: keys == [])


async def test_deleting_a_post_deletes_its_media_from_the_store(
    client: httpx.AsyncClient, store: ObjectStore
) -> None:
    author = await make_user(client)
    media = await ready(client, author, (await uploaded(client, author, jpeg_with_gps()))["id"])
    assert await objects_of(store, author.id, media["id"]) != []
    written = await post(client, author, "a picture", media_ids=[media["id"]])

    deleted = await client.delete(f"/api/v1/posts/{written['id']}/", headers=author.headers)
    assert deleted.status_code in (200, 204), deleted.text

    await wait_media_gone(client, store, author, media["id"])
    assert await objects_of(store, author.id, media["id"]) == []
    assert await keys_of(store, author.id) == []
    for url in (v["url"] for v in media["variants"].values()):
        async with httpx.AsyncClient(timeout=10) as cdn:
            assert (await cdn.get(url)).status_code in (403, 404)
    # Deleting the post again changes nothing.
    again = await client.delete(f"/api/v1/posts/{written['id']}/", headers=author.headers)
    assert again.status_code in (200, 204), again.text


async def test_media_shown_by_another_post_stays_until_that_one_goes(
    client: httpx.AsyncClient, store: ObjectStore
) -> None:
    author = await make_user(client)
    shared = await ready(client, author, (await uploaded(client, author, png(), "image/png"))["id"])
    only_first = await ready(
        client, author, (await uploaded(client, author, png(), "image/png"))["id"]
    )
    first = await post(client, author, "both", media_ids=[shared["id"], only_first["id"]])
    second = await post(client, author, "one again", media_ids=[shared["id"]])

    await client.delete(f"/api/v1/posts/{first['id']}/", headers=author.headers)
    await wait_media_gone(client, store, author, only_first["id"])
    assert (await client.get(f"/api/v1/media/{shared['id']}/", headers=author.headers)).json()[
        "status"
    ] == "ready"
    shown = (await client.get(f"/api/v1/posts/{second['id']}/")).json()
    assert [m["id"] for m in shown["media"]] == [shared["id"]]
    assert await objects_of(store, author.id, shared["id"]) != []

    await client.delete(f"/api/v1/posts/{second['id']}/", headers=author.headers)
    await wait_media_gone(client, store, author, shared["id"])
    assert await keys_of(store, author.id) == []


async def test_a_crafted_post_deleted_event_cannot_delete_someone_elses_media(
    client: httpx.AsyncClient, store: ObjectStore, redis_db: tuple[str, Redis]
) -> None:
    owner, attacker = await make_user(client), await make_user(client)
    theirs = await ready(client, owner, (await uploaded(client, owner, png(), "image/png"))["id"])
    own = await ready(
        client, attacker, (await uploaded(client, attacker, png(), "image/png"))["id"]
    )
    before = await objects_of(store, owner.id, theirs["id"])

    # The attacker's own media in the same event shows when it has been handled.
    crafted = events_pb2.PostDeleted(
        post_id=str(uuid.uuid4()),
        author_id=attacker.id,
        media_ids=[theirs["id"], "not-an-id", own["id"]],
    )
    await EventPublisher(redis_db[1], producer="feed").publish(FEED, crafted)
    await wait_media_gone(client, store, attacker, own["id"])

    still = await client.get(f"/api/v1/media/{theirs['id']}/", headers=owner.headers)
    assert still.status_code == 200
    assert still.json()["status"] == "ready"
    assert still.json()["variants"] == theirs["variants"]
    assert await objects_of(store, owner.id, theirs["id"]) == before
    dead = [k async for k in redis_db[1].scan_iter(match="zap:events:*:dead:*")]
    assert dead == []
