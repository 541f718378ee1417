"""Which events notify whom, and how groups order their actors: pure rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.notification.delivery.rules import (
    ACTORS_SHOWN,
    Intent,
    Kind,
    intents,
    most_recent_actors,
)
from zap.events.v1 import events_pb2

A, B, C = (uuid.uuid4() for _ in range(3))
POST, COMMENT = uuid.uuid4(), uuid.uuid4()


def envelope(**payload: object) -> events_pb2.Envelope:
    return events_pb2.Envelope(id=str(uuid.uuid4()), **payload)  # type: ignore[arg-type]


def test_likes_shares_comments_and_follows_tell_the_owner() -> None:
    (liked,) = intents(
        envelope(liked=events_pb2.Liked(user_id=str(A), post_id=str(POST), post_author_id=str(B)))
    )
    assert liked == Intent(B, Kind.LIKE, actor_id=A, post_id=POST)
    assert liked.group_key == f"like:{POST}"
    assert liked.grouped
    assert liked.once_per_actor
    (shared,) = intents(
        envelope(shared=events_pb2.Shared(user_id=str(A), post_id=str(POST), post_author_id=str(B)))
    )
    assert shared.kind is Kind.SHARE
    assert shared.group_key == f"share:{POST}"
    (commented,) = intents(
        envelope(
            commented=events_pb2.Commented(
                comment_id=str(COMMENT), user_id=str(A), post_id=str(POST), post_author_id=str(B)
            )
        )
    )
    assert commented == Intent(B, Kind.COMMENT, actor_id=A, post_id=POST, comment_id=COMMENT)
    # Every comment is news (grouped per post, but not once per actor).
    assert commented.grouped
    assert not commented.once_per_actor
    (followed,) = intents(
        envelope(followed=events_pb2.Followed(follower_id=str(A), followee_id=str(B)))
    )
    assert followed == Intent(B, Kind.FOLLOW, actor_id=A)
    assert followed.group_key == "follow"


def test_mentions_are_never_grouped() -> None:
    (mention,) = intents(
        envelope(
            mentioned=events_pb2.Mentioned(
                mentioned_user_id=str(B), author_id=str(A), post_id=str(POST), comment_id=""
            )
        )
    )
    assert mention == Intent(B, Kind.MENTION, actor_id=A, post_id=POST)
    assert mention.group_key == ""
    assert not mention.grouped


def test_self_inflicted_is_recognised() -> None:
    assert Intent(A, Kind.LIKE, actor_id=A, post_id=POST).self_inflicted
    assert not Intent(A, Kind.LIKE, actor_id=B, post_id=POST).self_inflicted
    assert not Intent(A, Kind.MODERATION).self_inflicted


@pytest.mark.parametrize(
    ("action", "outcome", "author_told"),
    [
        ("remove", "removed", True),
        ("shadow_ban", "shadow_banned", False),
        ("approve", "approved", False),
    ],
)
def test_moderation_tells_reporters_and_only_removal_tells_the_author(
    action: str, outcome: str, author_told: bool
) -> None:
    decision = events_pb2.ModerationDecided(
        decision_id="d1",
        content_kind=events_pb2.CONTENT_KIND_COMMENT,
        content_id=str(COMMENT),
        author_id=str(A),
        action=action,
        reason="spam",
        reporter_ids=[str(B), str(C), str(B)],
    )
    found = intents(envelope(moderation_decided=decision))
    expected = ([A] if author_told else []) + [B, C]
    assert [i.recipient_id for i in found] == expected
    assert {(i.kind, i.action, i.reason, i.comment_id, i.post_id) for i in found} == {
        (Kind.MODERATION, outcome, "spam", COMMENT, None)
    }
    assert all(i.actor_id is None and not i.grouped for i in found)


def test_events_that_concern_nobody_and_unknown_outcomes_ask_for_nothing() -> None:
    assert intents(envelope(post_created=events_pb2.PostCreated(post_id=str(POST)))) == []
    assert intents(envelope(unfollowed=events_pb2.Unfollowed(follower_id=str(A)))) == []
    assert intents(envelope(blocked=events_pb2.Blocked(blocker_id=str(A), blocked_id=str(B)))) == []
    odd = events_pb2.ModerationDecided(content_id=str(POST), author_id=str(A), action="explode")
    assert intents(envelope(moderation_decided=odd)) == []


def test_malformed_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="badly formed"):
        intents(
            envelope(
                liked=events_pb2.Liked(user_id="nope", post_id=str(POST), post_author_id=str(B))
            )
        )


def test_most_recent_actors_come_first_and_at_most_ten() -> None:
    now = datetime.now(UTC)
    actors = [uuid.uuid4() for _ in range(15)]
    times = {actor: now - timedelta(seconds=n) for n, actor in enumerate(actors)}
    assert most_recent_actors(times) == actors[:ACTORS_SHOWN]
    # An actor handled late but who acted first stays behind the others.
    late = uuid.uuid4()
    shown = most_recent_actors({**dict(list(times.items())[:3]), late: now - timedelta(hours=1)})
    assert shown == [*actors[:3], late]
