"""What a post's text means: hashtags and @mentions, parsed the same way everywhere."""

from __future__ import annotations

import re
import unicodedata

from zapcore.errors import InvalidArgument

HASHTAG_MAX_CHARS = 64
# A hashtag is '#' then letters, digits or '_' (any script), not preceded by a word char.
_HASHTAG = re.compile(r"(?<![\w#])#(\w{1,64})", re.UNICODE)
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{3,30})\b")
_EXPLICIT_HASHTAG = re.compile(r"^\w{1,64}$", re.UNICODE)


def normalise_content(content: str, *, max_chars: int, field: str = "content") -> str:
    """NFC-normalised text without surrounding whitespace; empty or too long is refused."""
    text = unicodedata.normalize("NFC", content).strip()
    if not text:
        raise InvalidArgument(f"{field} must not be empty", fields={field: "must not be empty"})
    if len(text) > max_chars:
        raise InvalidArgument(
            f"{field} is longer than {max_chars} characters",
            reason="content-too-long",
            fields={field: f"at most {max_chars} characters"},
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise InvalidArgument(
            f"{field} contains control characters", fields={field: "no control characters"}
        )
    return text


def hashtags(content: str, explicit: list[str], *, limit: int) -> list[str]:
    """Lower-cased hashtags from the text and the explicit list, in first-seen order."""
    found: dict[str, None] = {}
    for raw in explicit:
        tag = raw.strip().removeprefix("#")
        if not _EXPLICIT_HASHTAG.match(tag):
            raise InvalidArgument(
                "hashtags must be letters, digits or '_' (at most 64)",
                fields={"hashtags": f"invalid hashtag {raw[:70]!r}"},
            )
        found[tag.casefold()] = None
    for match in _HASHTAG.finditer(content):
        found[match.group(1).casefold()] = None
    if len(found) > limit:
        raise InvalidArgument(
            f"at most {limit} hashtags", fields={"hashtags": f"at most {limit} hashtags"}
        )
    return list(found)


def mentioned_usernames(content: str, *, limit: int = 20) -> list[str]:
    """Distinct @usernames in the text (lower-cased), at most `limit`."""
    names: dict[str, None] = {}
    for match in _MENTION.finditer(content):
        names[match.group(1).lower()] = None
        if len(names) == limit:
            break
    return list(names)
