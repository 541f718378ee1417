"""Everything the gateway holds open while it runs (one instance on app.state.edge)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.breakers import Breakers
from gateway.people import People
from gateway.ratelimit import RateLimiter, Rule, rules
from gateway.settings import GatewaySettings
from gateway.signing_keys import SigningKeys
from gateway.socket_slots import SocketSlots
from gateway.upstreams import Upstreams
from zapcore.access_tokens import AccessTokenVerifier
from zapcore.identity import IdentitySigner
from zapcore.redis import create_redis
from zapcore.revocation import DenyList
from zapcore.settings import PlatformSettings
from zapcore.user_cards import UserCards


@dataclass
class RateRules:
    ip: tuple[Rule, ...]
    user: tuple[Rule, ...]
    login: tuple[Rule, ...]
    register: tuple[Rule, ...]


@dataclass
class EdgeState:
    platform: PlatformSettings
    settings: GatewaySettings
    upstreams: Upstreams
    redis: Redis
    limiter: RateLimiter
    rate_rules: RateRules
    keys: SigningKeys
    deny_list: DenyList
    socket_slots: SocketSlots
    people: People
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def open(cls, platform: PlatformSettings, settings: GatewaySettings) -> EdgeState:
        signer = IdentitySigner(platform.internal_secret.get_secret_value())
        upstreams = Upstreams.open(
            platform,
            signer,
            settings.upstream_timeout_seconds,
            Breakers(settings.breaker_failure_threshold, settings.breaker_reset_seconds),
        )
        redis = create_redis(platform.redis_url)
        return cls(
            platform=platform,
            settings=settings,
            upstreams=upstreams,
            redis=redis,
            limiter=RateLimiter(redis),
            rate_rules=RateRules(
                ip=rules(settings.rate_limit_ip),
                user=rules(settings.rate_limit_user),
                login=rules(settings.rate_limit_login),
                register=rules(settings.rate_limit_register),
            ),
            keys=SigningKeys(
                upstreams.auth,
                AccessTokenVerifier(remembered=settings.verified_tokens_remembered),
                refresh_seconds=settings.jwks_refresh_seconds,
                min_refresh_seconds=settings.jwks_min_refresh_seconds,
            ),
            # Access tokens live at most 15 minutes; deny-list entries never need to outlive that.
            deny_list=DenyList(redis, 900),
            socket_slots=SocketSlots(
                redis, settings.ws_max_sockets_per_user, settings.ws_socket_lease_seconds
            ),
            people=People(UserCards(redis), upstreams.auth),
        )

    async def start(self) -> None:
        # Without Redis now, the first request that finds the script missing installs it.
        with contextlib.suppress(RedisError, OSError):
            await self.limiter.load()
        await self.keys.refresh()
        self._tasks.append(asyncio.create_task(self.keys.keep_fresh()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.upstreams.close()
        await self.redis.aclose()
