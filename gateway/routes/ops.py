"""Operations: liveness, readiness, metrics, and the public JWKS."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway.deps import Edge
from gateway.schemas.auth import JwksOut
from gateway.state import EdgeState

router = APIRouter(tags=["operations"])


# Probed every few seconds by every load balancer: the answer is written once.
_ALIVE = b'{"status":"ok"}'


@router.get("/healthz", summary="Alive", response_model=dict[str, str])
async def healthz() -> Response:
    return Response(_ALIVE, media_type="application/json")


async def _redis_ok(edge: EdgeState) -> bool:
    try:
        return bool(await asyncio.wait_for(edge.redis.ping(), 1.0))
    except (RedisError, OSError, TimeoutError):
        return False


def _answer(checks: dict[str, bool], response: Response) -> dict[str, object]:
    ready = all(checks.values())
    if not ready:
        response.status_code = 503
    return {"status": "ready" if ready else "not-ready", "checks": checks}


@router.get("/readyz", summary="The whole stack reachable: Redis, every service, signing keys")
async def readyz(edge: Edge, response: Response) -> dict[str, object]:
    if not edge.keys.jwks:
        await edge.keys.refresh()
    upstreams, redis = await asyncio.gather(edge.upstreams.health(), _redis_ok(edge))
    return _answer({"redis": redis, **upstreams, "signing_keys": bool(edge.keys.jwks)}, response)


@router.get("/readyz/edge", summary="This gateway can take traffic: Redis and signing keys")
async def readyz_edge(edge: Edge, response: Response) -> dict[str, object]:
    """The readiness probe of a gateway pod. A service that is down fails only the calls
    that need it (503 at once from its circuit), so it must not take every gateway out of
    rotation with it, as /readyz would."""
    if not edge.keys.jwks:
        await edge.keys.refresh()
    return _answer({"redis": await _redis_ok(edge), "signing_keys": bool(edge.keys.jwks)}, response)


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
