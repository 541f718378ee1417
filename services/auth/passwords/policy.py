"""Password rules (NIST SP 800-63B): length, not common, not the account's own names."""

from __future__ import annotations

MIN_LENGTH = 10
MAX_LENGTH = 128

# The most common passwords that meet the length rule; refusing them stops the
# cheapest credential-stuffing guesses. A deployment can extend this list.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "0123456789",
        "1111111111",
        "0000000000",
        "qwertyuiop",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou12",
        "qwerty1234",
        "qwerty12345",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abcdefghij",
        "abc1234567",
        "football12",
        "baseball12",
        "princess12",
        "welcome123",
        "sunshine12",
        "letmein123",
        "trustno123",
        "dragon1234",
        "monkey1234",
        "master1234",
        "superman12",
        "asdfghjkl1",
        "zxcvbnm123",
        "changeme12",
        "administrator",
        "qwertyuiop123",
        "1234qwerasdf",
    }
)


def password_problems(password: str, *, email: str, username: str) -> list[str]:
    """Reasons the password is refused; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        problems.append("is too common")
    names = [username.lower(), email.split("@", 1)[0].lower()]
    if any(len(name) >= 4 and name in lowered for name in names):
        problems.append("must not contain your username or email")
    return problems
