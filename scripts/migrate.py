"""Create every service's database if missing and apply its migrations."""

from __future__ import annotations

import asyncio

from scripts.services import SERVICES, service_settings
from zapcore import migrations


async def main() -> None:
    for service in SERVICES:
        url = service_settings(service).database_url
        created = await migrations.create_database(url)
        await asyncio.to_thread(migrations.upgrade, service, url)
        print(f"    {service:<13} {'created, ' if created else ''}migrated")


if __name__ == "__main__":
    asyncio.run(main())
