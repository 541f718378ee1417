"""`Idempotency-Key` on POST: a retried request returns the first answer, not a duplicate.

Keys are scoped to the signed-in user and kept 24 hours in Redis. The first request with
a key reserves it, runs, and stores its answer, with its headers, if the answer is the
request's own: a 2xx, or a 4xx about the request itself (400, 404, 409, 422...). A refusal
that says "not now" or "not you" (401, 403, 408, 425, 429, any 5xx, anything with a
Retry-After) frees the key instead, so the client's retry runs. A repeat with the same
method, path and body gets the stored answer with `Idempotent-Replayed: true`; a repeat
with another body is a 422; a repeat while the first is still running is a 409. Every
repeat counts against the client's address and user rate limits like any request.
Requests without a valid token pass through untouched (the route answers 401).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

from gateway.deps import authenticate, remember_verified
from gateway.middleware import ASGIApp, Message, Receive, Scope, Send
from gateway.problems import Problem, render
from gateway.state import EdgeState
from zapcore.errors import ZapError
from zapcore.logging import get_logger

log = get_logger(__name__)

TTL_SECONDS = 24 * 3600
# The first request is given this long to finish before its reservation lapses.
PENDING_SECONDS = 60
_MAX_KEY = 255
# Headers of one response rather than of the answer (the edge adds the trace header).
_UNREPLAYED_HEADERS = {b"date", b"server", b"traceparent", b"idempotent-replayed"}
# Refusals of the moment or of the caller, not answers to the request: never kept.
_TRANSIENT_STATUSES = {401, 403, 408, 425, 429}


def _keepable(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether this answer is the request's own, to be replayed for the key's lifetime."""
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return False
    return not any(name.lower() == b"retry-after" for name, _ in headers)


def storage_key(user_id: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"zap:idem:{{{user_id}}}:{digest}"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = headers.get(b"idempotency-key")
        auth = headers.get(b"authorization", b"")
        if key is None or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        text = key.decode("latin-1")
        if not 1 <= len(text) <= _MAX_KEY or not text.isprintable():
            await render(
                Problem(
                    400,
                    "invalid-idempotency-key",
                    "Invalid Idempotency-Key",
                    f"the key must be 1 to {_MAX_KEY} printable characters",
                ),
                scope["path"],
            )(scope, receive, send)
            return
        user_id = await self._user(scope, auth.decode("latin-1"))
        if user_id is None:
            await self.app(scope, receive, send)
            return
        try:
            body, replay_receive = await _read_body(receive)
        except HTTPException as too_large:  # the edge's body limit, raised while reading
            problem = Problem(
                too_large.status_code,
                "body-too-large",
                "Request body too large",
                str(too_large.detail),
            )
            await render(problem, scope["path"])(scope, receive, send)
            return
        fingerprint = hashlib.sha256(
            b"\0".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode(),
                    scope.get("query_string", b""),
                    body,
                ]
            )
        ).hexdigest()
        edge: EdgeState = scope["app"].state.edge
        slot = storage_key(user_id, text)
        try:
            reserved = await edge.redis.set(
                slot, orjson.dumps({"fp": fingerprint}), nx=True, ex=PENDING_SECONDS
            )
            stored = None if reserved else await edge.redis.get(slot)
        except RedisError as error:
            # Without Redis the request still runs once; only replay protection is lost.
            log.warning("idempotency.unavailable", error=str(error))
            await self.app(scope, replay_receive, send)
            return
        if not reserved:
            try:
                # A repeat is a request: it spends the same budget as the first did.
                await edge.limiter.hit(edge.rate_rules.ip, "ip", _client_ip(scope))
                await edge.limiter.hit(edge.rate_rules.user, "user", user_id)
            except Problem as refused:
                await render(refused, scope["path"])(scope, replay_receive, send)
                return
            await self._answer_repeat(scope, send, replay_receive, stored, fingerprint)
            return
        await self._run_and_store(scope, replay_receive, send, edge, slot, fingerprint)

    async def _user(self, scope: Scope, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        edge: EdgeState = scope["app"].state.edge
        try:
            identity = await authenticate(token.strip(), edge, _client_ip(scope))
        except ZapError:
            return None
        # The route's own authentication reuses this instead of verifying the token again.
        remember_verified(scope.setdefault("state", {}), token.strip(), identity)
        return str(identity.user_id)

    async def _answer_repeat(
        self, scope: Scope, send: Send, receive: Receive, stored: bytes | None, fingerprint: str
    ) -> None:
        record: dict[str, Any] = orjson.loads(stored) if stored else {}
        if record.get("fp") != fingerprint:
            problem = Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this key was already used for a different request",
                fields={"Idempotency-Key": "already used with another method, path or body"},
            )
        elif "status" not in record:
            problem = Problem(
                409,
                "request-in-progress",
                "Request in progress",
                "the first request with this key has not finished yet",
                headers={"Retry-After": "1"},
            )
        else:
            headers = [(bytes(k, "latin-1"), bytes(v, "latin-1")) for k, v in record["headers"]]
            headers.append((b"idempotent-replayed", b"true"))
            await send(
                {"type": "http.response.start", "status": record["status"], "headers": headers}
            )
            await send({"type": "http.response.body", "body": base64.b64decode(record["body"])})
            return
        await render(problem, scope["path"])(scope, receive, send)

    async def _run_and_store(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        edge: EdgeState,
        slot: str,
        fingerprint: str,
    ) -> None:
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in _UNREPLAYED_HEADERS
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await _forget(edge, slot)
            raise
        if not _keepable(status, headers):
            await _forget(edge, slot)
            return
        record = {
            "fp": fingerprint,
            "status": status,
            "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            "body": base64.b64encode(b"".join(chunks)).decode(),
        }
        try:
            await edge.redis.set(slot, orjson.dumps(record), ex=TTL_SECONDS)
        except RedisError as error:
            log.warning("idempotency.store_failed", error=str(error))


def _client_ip(scope: Scope) -> str:
    return str(scope.get("state", {}).get("client_ip", ""))


async def _forget(edge: EdgeState, slot: str) -> None:
    try:
        await edge.redis.delete(slot)
    except RedisError as error:
        log.warning("idempotency.release_failed", error=str(error))


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a receive that hands it to the app as if unread."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
