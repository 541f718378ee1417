"""Account rules: registration, sign-in, profiles, roles and soft deletion."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.accounts import rules
from services.auth.accounts.repository import UserRepository
from services.auth.accounts.throttle import LoginThrottle
from services.auth.models import AccountState, Role, User
from services.auth.passwords.hasher import PasswordHasher
from services.auth.passwords.policy import password_problems
from zapcore.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from zapcore.ids import new_id

_BAD_CREDENTIALS = "email or password is incorrect"


@dataclass(frozen=True, slots=True)
class Registration:
    email: str
    username: str
    password: str
    password_confirm: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    display_name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    username: str | None = None


class AccountService:
    def __init__(self, session: AsyncSession, hasher: PasswordHasher) -> None:
        self._users = UserRepository(session)
        self._session = session
        self._hasher = hasher

    async def register(self, form: Registration, role: Role = Role.USER) -> User:
        email = rules.normalise_email(form.email)
        problems: dict[str, str] = {}
        if email is None:
            problems["email"] = "is not a valid email address"
        if problem := rules.username_problem(form.username):
            problems["username"] = problem
        if problem := rules.text_problem(form.display_name, rules.MAX_DISPLAY_NAME):
            problems["display_name"] = problem
        if weak := password_problems(form.password, email=email or "", username=form.username):
            problems["password"] = "; ".join(weak)
        if form.password != form.password_confirm:
            problems["password_confirm"] = "does not match password"
        if problems:
            raise InvalidArgument("the registration is not valid", fields=problems)
        assert email is not None
        if await self._users.email_taken(email):
            raise AlreadyExists(
                "that email is already registered",
                reason="email-taken",
                fields={"email": "is already registered"},
            )
        if await self._users.username_taken(form.username):
            raise AlreadyExists(
                "that username is taken", reason="username-taken", fields={"username": "is taken"}
            )
        user = User(
            id=new_id(),
            email=email,
            username=form.username,
            display_name=form.display_name.strip(),
            password_hash=await self._hasher.hash(form.password),
            role=role,
            state=AccountState.ACTIVE,
        )
        try:
            async with self._session.begin_nested():
                return await self._users.add(user)
        except IntegrityError:
            # Lost a race with a concurrent registration of the same email or username.
            raise AlreadyExists(
                "that email or username is already registered", reason="account-exists"
            ) from None

    async def authenticate(
        self, email: str, password: str, client_ip: str, throttle: LoginThrottle
    ) -> User:
        """The active user with these credentials; the same error whatever is wrong."""
        normalised = rules.normalise_email(email) or email.strip().lower()
        await throttle.check(normalised, client_ip)
        # PostgreSQL refuses NUL in text; no stored address has one, so do not ask.
        user = await self._users.find_by_email(normalised) if "\x00" not in normalised else None
        active = user is not None and user.state == AccountState.ACTIVE
        digest = user.password_hash if user is not None and active else None
        if not await self._hasher.verify(password, digest) or user is None:
            await throttle.record_failure(normalised, client_ip)
            raise Unauthenticated(_BAD_CREDENTIALS, reason="invalid-credentials")
        await throttle.record_success(normalised, client_ip)
        if self._hasher.needs_rehash(user.password_hash):
            await self._users.set_password_hash(user.id, await self._hasher.hash(password))
        return user

    async def get_active(self, user_id: uuid.UUID) -> User:
        user = await self._users.get_active(user_id)
        if user is None:
            raise NotFound("no such user", reason="user-not-found")
        return user

    async def get_many(self, user_ids: Sequence[uuid.UUID]) -> Sequence[User]:
        if len(user_ids) > 100:
            raise InvalidArgument("at most 100 ids per call", fields={"user_ids": "at most 100"})
        return await self._users.list_active(list(dict.fromkeys(user_ids)))

    async def by_username(self, username: str) -> User:
        # Every stored username follows the pattern; anything else (NUL included) is unknown.
        valid = rules.USERNAME_PATTERN.fullmatch(username) is not None
        user = await self._users.find_active_by_username(username) if valid else None
        if user is None:
            raise NotFound("no such user", reason="user-not-found")
        return user

    async def by_usernames(self, usernames: list[str]) -> Sequence[User]:
        if len(usernames) > 100:
            raise InvalidArgument("at most 100 usernames", fields={"usernames": "at most 100"})
        valid = [u for u in usernames if rules.USERNAME_PATTERN.fullmatch(u) is not None]
        return await self._users.list_active_by_usernames(valid)

    async def update_profile(self, user_id: uuid.UUID, changes: ProfileChanges) -> User:
        user = await self._users.get_for_update(user_id)
        if user is None or user.state != AccountState.ACTIVE:
            raise NotFound("no such user", reason="user-not-found")
        problems: dict[str, str] = {}
        if changes.display_name is not None and (
            problem := rules.text_problem(changes.display_name, rules.MAX_DISPLAY_NAME)
        ):
            problems["display_name"] = problem
        if changes.bio is not None and (problem := rules.text_problem(changes.bio, rules.MAX_BIO)):
            problems["bio"] = problem
        if changes.avatar_url is not None and (problem := rules.url_problem(changes.avatar_url)):
            problems["avatar_url"] = problem
        if changes.username is not None and (problem := rules.username_problem(changes.username)):
            problems["username"] = problem
        if problems:
            raise InvalidArgument("the profile is not valid", fields=problems)
        if changes.username is not None and await self._users.username_taken(
            changes.username, excluding=user_id
        ):
            raise AlreadyExists(
                "that username is taken", reason="username-taken", fields={"username": "is taken"}
            )
        if changes.display_name is not None:
            user.display_name = changes.display_name.strip()
        if changes.bio is not None:
            user.bio = changes.bio
        if changes.avatar_url is not None:
            user.avatar_url = changes.avatar_url
        if changes.username is not None:
            user.username = changes.username
        await self._session.flush()
        return user

    async def set_role(self, user_id: uuid.UUID, role: Role) -> None:
        await self._users.set_role(user_id, role)

    async def deleted_at(self, user_id: uuid.UUID) -> datetime:
        """When a deleted account was deleted; NotFound for unknown or active accounts."""
        user = await self._users.get(user_id)
        if user is None or user.deleted_at is None:
            raise NotFound("no deleted account with that id", reason="user-not-found")
        return user.deleted_at

    async def soft_delete(
        self, user_id: uuid.UUID, password: str, client_ip: str, throttle: LoginThrottle
    ) -> datetime:
        """Make the account unusable at once: no login, no profile, PII scrambled.

        The password re-confirmation is a password check like a sign-in, so it spends the
        same failure budget: a stolen access token is no faster way to guess the password.
        """
        user = await self._users.get_for_update(user_id)
        if user is None or user.state != AccountState.ACTIVE:
            raise NotFound("no such user", reason="user-not-found")
        await throttle.check(user.email, client_ip)
        if not await self._hasher.verify(password, user.password_hash):
            await throttle.record_failure(user.email, client_ip)
            # 403, not 401: the session is fine, only the re-confirmation failed.
            raise PermissionDenied("password is incorrect", reason="password-incorrect")
        now = datetime.now(UTC)
        tag = secrets.token_hex(8)
        await self._users.soft_delete(
            user_id,
            scrambled_email=f"deleted-{tag}@deleted.invalid",
            scrambled_username=f"deleted_{tag}",
            at=now,
        )
        return now
