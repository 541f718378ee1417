"""The gateway application: routes, error rendering, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response

from gateway import docs_assets, openapi
from gateway.deps import ip_rate_limit
from gateway.idempotency import IdempotencyMiddleware
from gateway.middleware import EdgeMiddleware
from gateway.problems import Problem, problem_from_error, problem_from_failure, render
from gateway.routes import auth, feed, media, moderation, notifications, ops, posts, users
from gateway.settings import GatewaySettings
from gateway.state import EdgeState
from zapcore.errors import ZapError
from zapcore.logging import get_logger
from zapcore.rpc_errors import failure_from_rpc_error
from zapcore.settings import PlatformSettings

log = get_logger(__name__)


def create_app(platform: PlatformSettings, settings: GatewaySettings) -> FastAPI:
    """A gateway wired to the services named in `platform`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        edge = EdgeState.open(platform, settings)
        app.state.edge = edge
        await edge.start()
        try:
            yield
        finally:
            await edge.close()

    docs = settings.docs_on(platform)
    app = FastAPI(
        title="ZAP",
        version="1.0.0",
        summary="Public REST and WebSocket API of the ZAP social network.",
        lifespan=lifespan,
        # The docs pages are docs_assets' own, which never reach for a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        generate_unique_id_function=openapi.operation_id,
        debug=False,
    )
    _install_error_handlers(app)
    openapi.install(app)
    if docs:
        docs_assets.install(app, openapi_url="/openapi.json")
    api = [Depends(ip_rate_limit)]
    app.include_router(ops.router)
    app.include_router(auth.router, dependencies=api)
    app.include_router(users.router, dependencies=api)
    app.include_router(posts.router, dependencies=api)
    app.include_router(feed.router, dependencies=api)
    app.include_router(notifications.router)
    app.include_router(moderation.router, dependencies=api)
    app.include_router(media.router, dependencies=api)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "traceparent"],
            expose_headers=["traceparent", "Retry-After"],
        )
    if "*" not in settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    # Added last runs first: the edge (trace, body limit) wraps idempotency, which wraps routes.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(EdgeMiddleware, settings=settings)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return render(exc, request.url.path)

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ZapError)
        return render(problem_from_error(exc), request.url.path)

    async def on_rpc_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, grpc.aio.AioRpcError)
        failure = failure_from_rpc_error(exc)
        problem = problem_from_failure(failure)
        if problem.status >= 500:
            log.warning("upstream.failed", code=failure.code.name, message=failure.message)
        return render(problem, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return render(
                Problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON"),
                request.url.path,
            )
        fields = {}
        for error in errors:
            # ("query", "limit") -> "limit": clients name fields, not where FastAPI found them.
            location = [str(part) for part in error.get("loc", ())]
            if location and location[0] in ("body", "query", "path", "header"):
                location = location[1:]
            fields[".".join(location) or "body"] = str(error.get("msg", "is invalid"))
        return render(
            Problem(
                422, "validation-error", "Invalid request", "some fields are invalid", fields=fields
            ),
            request.url.path,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reasons = {
            404: ("not-found", "Not found"),
            405: ("method-not-allowed", "Method not allowed"),
            413: ("body-too-large", "Request body too large"),
        }
        reason, title = reasons.get(exc.status_code, ("http-error", "HTTP error"))
        return render(
            Problem(exc.status_code, reason, title, str(exc.detail), headers=exc.headers),
            request.url.path,
        )

    async def on_redis_down(request: Request, exc: Exception) -> Response:
        # Tokens cannot be checked against the deny-list, nor idempotency keys kept: refuse
        # for now (fail closed) with an answer a client can retry, not a 500.
        log.warning("gateway.redis_unavailable", error=str(exc), path=request.url.path)
        return render(
            Problem(
                503,
                "service-unavailable",
                "Service unavailable",
                "try again shortly",
                headers={"Retry-After": "1"},
            ),
            request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("gateway.unhandled_error", path=request.url.path)
        return render(
            Problem(500, "internal", "Internal error", "something went wrong on our side"),
            request.url.path,
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(ZapError, on_domain_error)
    app.add_exception_handler(grpc.aio.AioRpcError, on_rpc_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RedisError, on_redis_down)
    app.add_exception_handler(Exception, on_unexpected)
