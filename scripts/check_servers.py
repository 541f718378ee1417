"""Say exactly what to do when PostgreSQL or Redis is not reachable."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from services.auth.settings import AuthSettings
from zapcore.settings import PlatformSettings

POSTGRES_HINT = (
    "start it with:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
    "or point ZAP_<SERVICE>_DATABASE_URL at a reachable server"
)
REDIS_HINT = (
    'start it with:  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no\nor point ZAP_REDIS_URL at a reachable server"
)


async def main() -> int:
    failed = False
    url = make_url(AuthSettings().database_url).set(drivername="postgresql", database="postgres")
    try:
        conn = await asyncio.wait_for(asyncpg.connect(url.render_as_string(hide_password=False)), 5)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL is not reachable at {url.host}:{url.port} ({exc}).\n{POSTGRES_HINT}")
        failed = True
    redis_url = PlatformSettings().redis_url
    client = Redis.from_url(redis_url, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        print(f"Redis is not reachable at {redis_url} ({exc}).\n{REDIS_HINT}")
        failed = True
    finally:
        await client.aclose()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
