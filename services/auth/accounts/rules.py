"""Pure rules for account fields: normalisation and validation, no I/O."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,30}$")
RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "support",
        "moderator",
        "zap",
        "api",
        "me",
        "help",
        "security",
        "staff",
        "null",
        "undefined",
        "deleted",
    }
)
MAX_DISPLAY_NAME = 80
MAX_BIO = 500
MAX_URL = 2048


def normalise_email(raw: str) -> str | None:
    """The canonical (lower-case) form of a syntactically valid address, else None."""
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def username_problem(username: str) -> str | None:
    if not USERNAME_PATTERN.fullmatch(username):
        return "3 to 30 letters, digits or underscores"
    if username.lower() in RESERVED_USERNAMES or username.lower().startswith("deleted_"):
        return "is reserved"
    return None


def text_problem(value: str, limit: int) -> str | None:
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        return "must not contain control characters"
    return None


def url_problem(value: str) -> str | None:
    if value and not re.fullmatch(r"https://[^\s\x00-\x1f\x7f]{1,2040}", value):
        return "must be an https URL"
    return None
