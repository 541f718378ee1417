"""Follows, blocks, mutes, profiles and follower lists through the real gateway."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.factories import make_user
from tests.support.problems import assert_problem

if TYPE_CHECKING:  # imported by name, pytest would try to collect it as a test class
    from tests.factories import TestUser

USERS = "/api/v1/users"
NOTHING = {"following": False, "followed_by": False, "blocking": False, "blocked_by": False}


async def act(
    client: httpx.AsyncClient, method: str, actor: TestUser, verb: str, target: str
) -> httpx.Response:
    return await client.request(method, f"{USERS}/{target}/{verb}/", headers=actor.headers)


async def profile(client: httpx.AsyncClient, user: TestUser, viewer: TestUser | None = None):
    headers = viewer.headers if viewer else {}
    answer = await client.get(f"{USERS}/{user.id}/", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def relationship_of(body: dict[str, Any]) -> dict[str, bool]:
    return {key: body[key] for key in (*NOTHING, "muting")}


async def test_follow_changes_counts_and_relationship_on_profiles(client) -> None:
    alice, bob = await make_user(client), await make_user(client)
    before = await profile(client, bob, viewer=alice)
    assert before["counts"] == {"followers": 0, "following": 0}
    assert relationship_of(before["relationship"]) == {**NOTHING, "muting": False}

    answer = await act(client, "POST", alice, "follow", bob.id)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"user_id": bob.id, **NOTHING, "following": True, "muting": False}
    again = await act(client, "POST", alice, "follow", bob.id)  # idempotent
    assert again.json() == answer.json()

    seen_by_alice = await profile(client, bob, viewer=alice)
    assert seen_by_alice["counts"] == {"followers": 1, "following": 0}
    assert seen_by_alice["relationship"]["following"] is True
    seen_by_bob = await profile(client, alice, viewer=bob)
    assert seen_by_bob["counts"] == {"followers": 0, "following": 1}
    assert seen_by_bob["relationship"]["followed_by"] is True
    anonymous = await profile(client, bob)
    assert anonymous["counts"] == {"followers": 1, "following": 0}
    assert anonymous["relationship"] is None
    by_name = await client.get(f"{USERS}/by-username/{bob.username}/", headers=alice.headers)
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["counts"] == seen_by_alice["counts"]
    assert by_name.json()["relationship"] == seen_by_alice["relationship"]


async def test_unfollow(client) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await act(client, "POST", alice, "follow", bob.id)
    answer = await act(client, "DELETE", alice, "follow", bob.id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["following"] is False
    assert (await act(client, "DELETE", alice, "follow", bob.id)).status_code == 200
    assert (await profile(client, bob))["counts"] == {"followers": 0, "following": 0}


async def test_without_the_trailing_slash_too(client) -> None:
    alice, bob = await make_user(client), await make_user(client)
    answer = await client.post(f"{USERS}/{bob.id}/follow", headers=alice.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["following"] is True


async def test_self_follow_is_refused(client) -> None:
    alice = await make_user(client)
    answer = await act(client, "POST", alice, "follow", alice.id)
    assert_problem(answer, 400, reason="cannot-follow-self")
    assert (await profile(client, alice))["counts"] == {"followers": 0, "following": 0}


async def test_following_an_unknown_user_is_not_found(client) -> None:
    alice = await make_user(client)
    for verb in ("follow", "block", "mute"):
        answer = await act(client, "POST", alice, verb, str(uuid.uuid4()))
        assert_problem(answer, 404)
    assert (await profile(client, alice))["counts"] == {"followers": 0, "following": 0}


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "1%20OR%201=1"])
async def test_a_malformed_user_id_is_a_validation_problem(client, bad_id) -> None:
    alice = await make_user(client)
    assert_problem(await act(client, "POST", alice, "follow", bad_id), 422, fields=("user_id",))
    assert_problem(await client.get(f"{USERS}/{bad_id}/followers/"), 422, fields=("user_id",))


async def test_following_requires_a_signed_in_user(client) -> None:
    bob = await make_user(client)
    answer = await client.post(f"{USERS}/{bob.id}/follow/")
    assert_problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert (await profile(client, bob))["counts"] == {"followers": 0, "following": 0}


async def test_following_someone_who_blocked_you_is_refused(client) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await act(client, "POST", alice, "follow", bob.id)
    await act(client, "POST", bob, "follow", alice.id)
    blocked = await act(client, "POST", bob, "block", alice.id)
    assert blocked.status_code == 200, blocked.text
    assert relationship_of(blocked.json()) == {**NOTHING, "blocking": True, "muting": False}

    assert_problem(await act(client, "POST", alice, "follow", bob.id), 409, reason="blocked")
    assert_problem(await act(client, "POST", bob, "follow", alice.id), 409, reason="blocked")
    for user in (alice, bob):
        assert (await profile(client, user))["counts"] == {"followers": 0, "following": 0}
    assert (await profile(client, bob, viewer=alice))["relationship"]["blocked_by"] is True

    assert (await act(client, "DELETE", bob, "block", alice.id)).json()["blocking"] is False
    assert (await act(client, "POST", alice, "follow", bob.id)).status_code == 200


async def test_mute_keeps_following_but_shows_muting(client) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await act(client, "POST", alice, "follow", bob.id)
    muted = await act(client, "POST", alice, "mute", bob.id)
    assert muted.status_code == 200, muted.text
    assert (muted.json()["muting"], muted.json()["following"]) == (True, True)
    seen = await profile(client, bob, viewer=alice)
    assert (seen["relationship"]["muting"], seen["relationship"]["following"]) == (True, True)
    assert seen["counts"]["followers"] == 1
    # The muted user cannot tell.
    assert (await profile(client, alice, viewer=bob))["relationship"]["followed_by"] is True
    unmuted = await act(client, "DELETE", alice, "mute", bob.id)
    assert (unmuted.json()["muting"], unmuted.json()["following"]) == (False, True)


async def test_followers_list_paginates_with_public_profiles(client) -> None:
    star = await make_user(client)
    fans = [await make_user(client) for _ in range(5)]
    for fan in fans:
        await act(client, "POST", fan, "follow", star.id)

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = await client.get(f"{USERS}/{star.id}/followers/", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["results"]) <= 2
        seen += body["results"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [item["id"] for item in seen] == [fan.id for fan in reversed(fans)]
    assert [item["username"] for item in seen] == [fan.username for fan in reversed(fans)]
    for item in seen:
        assert item["followed_at"]
        assert not {"email", "role"} & item.keys()

    following = await client.get(f"{USERS}/{fans[0].id}/following/")
    assert following.status_code == 200, following.text
    assert [item["id"] for item in following.json()["results"]] == [star.id]
    assert following.json()["next_cursor"] is None


async def test_list_parameters_are_validated(client) -> None:
    star = await make_user(client)
    url = f"{USERS}/{star.id}/followers/"
    for limit in (0, 101, "many"):
        assert_problem(await client.get(url, params={"limit": limit}), 422)
    assert_problem(await client.get(url, params={"cursor": "forged"}), 422, reason="invalid-cursor")
    assert_problem(await client.get(f"{USERS}/{uuid.uuid4()}/followers/"), 404)
