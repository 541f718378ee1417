"""The own-account read on asyncpg itself answers what the ORM read does."""

from __future__ import annotations

import dataclasses

from services.auth.accounts.repository import AccountReads, AccountRecord, UserRepository
from services.auth.models import AccountState, Role, User
from zapcore.db import Database
from zapcore.ids import new_id


async def test_the_own_account_read_on_the_driver_equals_the_orm_read(
    databases: dict[str, str],
) -> None:
    db = Database(databases["auth"], pool_size=1)
    active = User(
        id=new_id(),
        email="ada@example.org",
        username="ada_reads",
        display_name="Ada",
        bio="counts things",
        avatar_url="https://cdn.example/a.png",
        password_hash="!",
        role=Role.MODERATOR,
    )
    deleted = User(
        id=new_id(),
        email="gone@example.org",
        username="gone_reads",
        password_hash="!",
        state=AccountState.DELETED,
    )
    try:
        async with db.unit_of_work() as session:
            session.add_all([active, deleted])
        async with db.read_only() as session:
            expected = await UserRepository(session).get_active(active.id)
        assert expected is not None
        async with db.driver_reads() as connection:
            found = await AccountReads(connection).active(active.id)
            gone = await AccountReads(connection).active(deleted.id)
        assert found == AccountRecord(
            **{f.name: getattr(expected, f.name) for f in dataclasses.fields(AccountRecord)}
        )
        assert gone is None
    finally:
        await db.dispose()
