"""Print the metadata header of a short-lived internal identity, for grpcurl and friends.

Every ZAP service refuses a call without a signed `x-zap-identity` assertion (see
zapcore/identity.py); the gateway mints one per request from the user's access token. An
operator calling a service directly mints one here, for a given user and role, signed with
this machine's ZAP_INTERNAL_SECRET (the development secret unless it is set):

    grpcurl -plaintext localhost:50051 list        # reflection needs no identity
    grpcurl -H "$(python -m scripts.identity --user <uuid>)" -plaintext \\
        localhost:50051 zap.auth.v1.AuthService/GetAccount

It expires after --ttl seconds (300 by default, an hour at most): an assertion that leaks
from a shell history is soon worth nothing.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from services.auth.models import Role
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner
from zapcore.settings import PlatformSettings

MAX_TTL_SECONDS = 3600


def header(identity: Identity, ttl_seconds: int, platform: PlatformSettings) -> str:
    """`x-zap-identity: <assertion>` for `identity`, valid for `ttl_seconds`."""
    signer = IdentitySigner(platform.internal_secret.get_secret_value())
    return f"{IDENTITY_METADATA_KEY}: {signer.sign(identity, ttl_seconds=ttl_seconds)}"


def _ttl(text: str) -> int:
    seconds = int(text)
    if not 1 <= seconds <= MAX_TTL_SECONDS:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_TTL_SECONDS} seconds")
    return seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.identity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--user", type=uuid.UUID, help="the user to act for (none: no user)")
    parser.add_argument("--role", choices=[role.value for role in Role], default=Role.USER.value)
    parser.add_argument("--ttl", type=_ttl, default=300, help="seconds until it expires")
    parser.add_argument(
        "--service",
        default="operator",
        help="the calling service named in the assertion (logs show it; a few calls "
        "accept only one service, e.g. moderation's)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    identity = Identity(service=args.service, user_id=args.user, role=args.role)
    print(header(identity, args.ttl, PlatformSettings()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
