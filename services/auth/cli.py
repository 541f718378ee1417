"""Operator commands for auth (`zap-auth --help`).

zap-auth create-user --email a@b.c --username boss --role admin   # createsuperuser
zap-auth rotate-key                                                # new signing key
"""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import typer

from services.auth.accounts.service import AccountService, Registration
from services.auth.deletion.cascade import purge
from services.auth.models import Role
from services.auth.passwords.hasher import PasswordHasher
from services.auth.settings import AuthSettings
from services.auth.tokens.keys import KeyRing, write_new_key
from zapcore.db import Database
from zapcore.errors import ZapError

app = typer.Typer(help="Operate the auth service.", no_args_is_help=True)


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="Email of the new account.")],
    username: Annotated[str, typer.Option(help="Username of the new account.")],
    role: Annotated[Role, typer.Option(help="user, moderator or admin.")] = Role.ADMIN,
    password: Annotated[
        str | None,
        typer.Option(help="Password; asked for when omitted.", envvar="ZAP_NEW_PASSWORD"),
    ] = None,
) -> None:
    """Create an account with a role (the original design's createsuperuser)."""
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise typer.BadParameter("the passwords do not match")
    settings = AuthSettings()

    async def run() -> str:
        db = Database(settings.database_url, pool_size=1)
        hasher = PasswordHasher(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            workers=1,
        )
        try:
            async with db.unit_of_work() as session:
                form = Registration(email, username, password, password)
                user = await AccountService(session, hasher).register(form, role=role)
                return str(user.id)
        finally:
            hasher.close()
            await db.dispose()

    try:
        user_id = asyncio.run(run())
    except ZapError as exc:
        details = "; ".join(f"{name} {text}" for name, text in exc.fields.items())
        typer.echo(f"error: {exc.detail}" + (f" ({details})" if details else ""), err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"created {role.value} {username} ({user_id})")


@app.command("purge-deleted")
def purge_deleted(
    grace_days: Annotated[
        int | None,
        typer.Option(
            help="Purge accounts deleted more than this many days ago (default: setting)."
        ),
    ] = None,
) -> None:
    """Hard-delete the tombstones of deleted accounts (what the daily cron does)."""
    settings = AuthSettings()
    days = settings.deletion_grace_days if grace_days is None else grace_days
    if days < 0:
        raise typer.BadParameter("grace days cannot be negative")

    async def run() -> int:
        db = Database(settings.database_url, pool_size=1)
        try:
            return await purge(db, days)
        finally:
            await db.dispose()

    typer.echo(f"purged {asyncio.run(run())} accounts deleted more than {days} days ago")


@app.command("rotate-key")
def rotate_key() -> None:
    """Add a new signing key; it signs from the next start, older keys keep verifying."""
    settings = AuthSettings()
    kid = write_new_key(settings.signing_keys_dir)
    ring = KeyRing.load(settings.signing_keys_dir)
    typer.echo(f"new key {kid}; {len(ring.jwks())} keys published; restart auth to sign with it")


@app.command("prune-keys")
def prune_keys(
    keep: Annotated[int, typer.Option(help="How many of the newest keys to keep.")] = 2,
) -> None:
    """Remove old keys once every token they signed has expired (after 15 minutes)."""
    settings = AuthSettings()
    paths = sorted(settings.signing_keys_dir.glob("*.pem"))
    for path in paths[: max(0, len(paths) - max(keep, 1))]:
        path.unlink()
        typer.echo(f"removed {path.stem}")


if __name__ == "__main__":
    app()
