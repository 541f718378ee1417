"""Pure rules about relationships: how they look from one side, and who may do what."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from zapcore.errors import InvalidArgument

MAX_BATCH = 100


@dataclass(frozen=True, slots=True)
class Relationship:
    """How `user_id` looks from a viewer's side."""

    user_id: uuid.UUID
    following: bool = False
    followed_by: bool = False
    blocking: bool = False
    blocked_by: bool = False
    muting: bool = False


@dataclass(frozen=True, slots=True)
class Exclusions:
    """Everyone whose content a viewer must not see."""

    blocking: list[uuid.UUID]
    blocked_by: list[uuid.UUID]
    muted: list[uuid.UUID]


def refuse_self(viewer: uuid.UUID, target: uuid.UUID, verb: str) -> None:
    """InvalidArgument when a user tries to `verb` themself."""
    if viewer == target:
        raise InvalidArgument(f"you cannot {verb} yourself", reason=f"cannot-{verb}-self")


def pair_lock_key(a: uuid.UUID, b: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for an unordered pair of users.

    Follow and Block on the same pair take this lock first, so a follow can never slip in
    between a block's check and its removal of follows. A hash collision between two pairs
    only serialises them; it never breaks correctness.
    """
    low, high = sorted((a, b))
    digest = hashlib.blake2b(low.bytes + high.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def check_batch(ids: list[uuid.UUID], field: str) -> None:
    if len(ids) > MAX_BATCH:
        raise InvalidArgument(
            f"at most {MAX_BATCH} ids per call", fields={field: f"at most {MAX_BATCH}"}
        )
