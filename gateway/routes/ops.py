"""Operations: liveness, readiness, metrics, and the public JWKS."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway.deps import Edge
from gateway.schemas.auth import JwksOut

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Dependencies reachable")
async def readyz(edge: Edge, response: Response) -> dict[str, object]:
    async def redis_ok() -> bool:
        try:
            return bool(await asyncio.wait_for(edge.redis.ping(), 1.0))
        except (RedisError, OSError, TimeoutError):
            return False

    if not edge.keys.jwks:
        await edge.keys.refresh()
    upstreams, redis = await asyncio.gather(edge.upstreams.health(), redis_ok())
    checks = {"redis": redis, **upstreams, "signing_keys": bool(edge.keys.jwks)}
    ready = all(checks.values())
    if not ready:
        response.status_code = 503
    return {"status": "ready" if ready else "not-ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _jwks(edge: Edge, response: Response) -> JwksOut:
    if not edge.keys.jwks:
        await edge.keys.refresh()
    response.headers["Cache-Control"] = "public, max-age=300"
    return JwksOut(keys=edge.keys.jwks)


router.add_api_route(
    "/api/v1/auth/jwks/", _jwks, methods=["GET"], tags=["auth"], summary="Token signing keys"
)
router.add_api_route(
    "/.well-known/jwks.json", _jwks, methods=["GET"], tags=["auth"], summary="Token signing keys"
)
