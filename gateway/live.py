"""WS /ws/notifications/: the caller's notifications, live, relayed from notification's Subscribe.

Connecting
    wss://host/ws/notifications/?token=<access>[&cursor=<cursor>]
    or, keeping the token out of URLs and logs, as a subprotocol pair:
    Sec-WebSocket-Protocol: bearer, <access>      (browser: new WebSocket(url, ["bearer", token]))
    The server then answers `Sec-WebSocket-Protocol: bearer`. The token is verified like any
    request's (signature, expiry, deny-list). Without a cursor the stream starts now; with the
    cursor of the last message received, everything after it is replayed first, in order,
    exactly once, then live messages follow.

Messages (server to client, JSON text)
    {"type": "notification", "cursor": "...", "notification": {...}}   (as in the REST list)
    {"type": "ready", "cursor": "...", "sent_at": "..."}     once, when the replay is done
    {"type": "heartbeat", "cursor": "...", "sent_at": "..."}  when quiet (every ~25 s)
    {"type": "pong"}                                          answer to {"type": "ping"}
    Keep the latest `cursor` of any of them and reconnect with it. A regrouped notification
    (a new like on a liked post) arrives again with the same id, its new count and cursor.
    The only message a client may send is {"type": "ping"}.

Close codes (all but 1000/4400/4403/4429 invite a reconnect with the last cursor)
    1000  normal closure                      1008  policy: rate limited, or the client sent
    1011  unexpected server error                   something other than a ping
    1012  notifications are restarting        1013  try again later: overloaded, or this
    4400  bad request (invalid cursor)              client read too slowly and fell behind
    4401  token missing, invalid, expired or revoked (also when it expires, or the account
          is logged out or deleted, while connected): reconnect with a fresh token
    4403  not allowed (the Origin is not one of ZAP_GATEWAY_CORS_ORIGINS)
    4429  too many sockets open for this account (ZAP_GATEWAY_WS_MAX_SOCKETS_PER_USER, over
          every gateway): close one before reconnecting

Each socket holds one Subscribe stream and a bounded queue of messages for the client: a
client that falls behind is closed with 1013 and never slows anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import orjson
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.deps import identity_of, verified_claims
from gateway.problems import Problem
from gateway.schemas.common import when
from gateway.schemas.notifications import (
    LiveNotification,
    LivePong,
    LivePosition,
    NotificationOut,
)
from gateway.socket_slots import SocketSlotsFull
from gateway.state import EdgeState
from zap.auth.v1 import auth_pb2
from zap.notification.v1 import notification_pb2
from zapcore.access_tokens import AccessClaims
from zapcore.errors import Unauthenticated
from zapcore.identity import set_current_identity
from zapcore.logging import get_logger
from zapcore.rpc_errors import CallFailure, failure_from_rpc_error

log = get_logger(__name__)

NORMAL = 1000
UNSUPPORTED_DATA = 1003
POLICY = 1008
INTERNAL = 1011
RESTARTING = 1012
TRY_AGAIN_LATER = 1013
BAD_REQUEST = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
TOO_MANY_SOCKETS = 4429

SUBPROTOCOL = "bearer"
MAX_CURSOR_CHARS = 1024
# Margin on the stream's deadline: the socket is closed at token expiry, before it.
_DEADLINE_MARGIN_SECONDS = 5

OPEN_SOCKETS = Gauge("zap_ws_connections", "Open notification WebSockets.")
CLOSED_SOCKETS = Counter(
    "zap_ws_closed_total", "Notification WebSockets closed, by close code.", ["code"]
)


class Close(Exception):
    """End the socket with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        # A close frame carries at most 123 bytes of reason.
        self.reason = reason.encode()[:123].decode(errors="ignore")


class ClientGone(Exception):
    """The client closed the socket."""


def credentials(websocket: WebSocket) -> tuple[str, str | None]:
    """(token, subprotocol to answer): the bearer subprotocol pair wins over the query."""
    offered = [str(p).strip() for p in websocket.scope.get("subprotocols", [])]
    if SUBPROTOCOL in offered:
        at = offered.index(SUBPROTOCOL)
        token = offered[at + 1] if at + 1 < len(offered) else ""
        return token, SUBPROTOCOL
    return websocket.query_params.get("token", ""), None


def close_for(failure: CallFailure) -> Close:
    """The close code for a failed Subscribe."""
    code = failure.code
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return Close(BAD_REQUEST, failure.message or "invalid request")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Close(UNAUTHORIZED, "token expired; reconnect with a fresh token and your cursor")
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return Close(FORBIDDEN, failure.message or "not allowed")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        if failure.reason == "slow-consumer":
            return Close(TRY_AGAIN_LATER, "too slow: messages were not read fast enough")
        return Close(TRY_AGAIN_LATER, "overloaded; reconnect later with your cursor")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return Close(TRY_AGAIN_LATER, "notifications unavailable; reconnect later with your cursor")
    return Close(INTERNAL, "unexpected error; reconnect with your cursor")


async def serve(websocket: WebSocket, edge: EdgeState) -> None:
    """Admit the client, relay its notifications until one side ends, close with a code."""
    token, subprotocol = credentials(websocket)
    await websocket.accept(subprotocol=subprotocol)
    started = time.monotonic()
    code, reason = NORMAL, ""
    OPEN_SOCKETS.inc()
    try:
        claims, ip, cursor = await _admit(websocket, edge, token)
        try:
            async with edge.socket_slots.held(claims.user_id):
                await Relay(websocket, edge, claims, ip, cursor).run()
        except SocketSlotsFull:
            cap = edge.settings.ws_max_sockets_per_user
            raise Close(
                TOO_MANY_SOCKETS, f"too many open sockets (at most {cap}); close one first"
            ) from None
    except Close as close:
        code, reason = close.code, close.reason
    except ClientGone:
        code = NORMAL
    except Exception:
        log.exception("ws.failed", path="/ws/notifications/")
        code, reason = INTERNAL, "unexpected error; reconnect with your cursor"
    finally:
        OPEN_SOCKETS.dec()
        CLOSED_SOCKETS.labels(str(code)).inc()
        log.info(
            "ws.closed",
            path="/ws/notifications/",
            code=code,
            reason=reason,
            seconds=round(time.monotonic() - started, 3),
        )
    # The client may be gone already: then there is nobody to tell. One that reads nothing
    # would hold the close frame, and this task, until it goes: the send timeout bounds that.
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
        async with asyncio.timeout(edge.settings.ws_send_timeout_seconds):
            await websocket.close(code, reason)


async def _admit(
    websocket: WebSocket, edge: EdgeState, token: str
) -> tuple[AccessClaims, str, str]:
    if not token:
        raise Close(UNAUTHORIZED, "send an access token: ?token= or subprotocols 'bearer, <token>'")
    ip = str(websocket.scope.get("state", {}).get("client_ip", ""))
    try:
        claims = await verified_claims(token, edge)
    except Unauthenticated as error:
        raise Close(UNAUTHORIZED, error.detail) from None
    except grpc.aio.AioRpcError:
        raise Close(TRY_AGAIN_LATER, "cannot verify tokens right now; try again") from None
    origin = websocket.headers.get("origin")
    allowed = edge.settings.cors_origins
    if origin and allowed and "*" not in allowed and origin not in allowed:
        raise Close(FORBIDDEN, "this origin may not open notification sockets")
    try:
        await edge.limiter.hit(edge.rate_rules.ip, "ip", ip)
        await edge.limiter.hit(edge.rate_rules.user, "user", str(claims.user_id))
    except Problem as problem:
        wait = problem.headers.get("Retry-After", "a few")
        raise Close(POLICY, f"rate limited; retry in {wait} seconds") from None
    cursor = websocket.query_params.get("cursor", "")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise Close(BAD_REQUEST, "cursor is not valid")
    return claims, ip, cursor


class Relay:
    """One socket: the Subscribe stream in, the client's socket out, the token watched."""

    def __init__(
        self, websocket: WebSocket, edge: EdgeState, claims: AccessClaims, ip: str, cursor: str
    ) -> None:
        self._ws = websocket
        self._edge = edge
        self._claims = claims
        self._identity = identity_of(claims, ip)
        self._settings = edge.settings
        self._outbox: asyncio.Queue[str] = asyncio.Queue(edge.settings.ws_send_queue_size)
        # The position of the last message handed to the client's queue: where a resumed
        # stream starts, so the client sees neither gap nor duplicate.
        self._cursor = cursor
        self._ready_sent = False

    async def run(self) -> None:
        # Tasks copy the context: every upstream call carries the caller's identity.
        set_current_identity(self._identity)
        tasks = [
            asyncio.create_task(self._upstream(), name="ws-upstream"),
            asyncio.create_task(self._downstream(), name="ws-downstream"),
            asyncio.create_task(self._from_client(), name="ws-client"),
            asyncio.create_task(self._watch_token(), name="ws-token"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        errors = [task.exception() for task in done if not task.cancelled()]
        for error in errors:
            if isinstance(error, Close | ClientGone):
                raise error
        for error in errors:
            if error is not None:
                log.error("ws.relay_failed", error=repr(error))
                raise Close(INTERNAL, "unexpected error; reconnect with your cursor")
        raise Close(RESTARTING, "notifications are restarting; reconnect with your cursor")

    # --- notification -> queue ----------------------------------------------------------------

    async def _upstream(self) -> None:
        stub = self._edge.upstreams.notification
        failures = 0
        while True:
            seconds = max(1.0, self._claims.expires_at - time.time()) + _DEADLINE_MARGIN_SECONDS
            call = stub.Subscribe(
                notification_pb2.SubscribeRequest(cursor=self._cursor), timeout=seconds
            )
            try:
                async for response in call:
                    failures = 0
                    await self._relay(response)
            except grpc.aio.AioRpcError as error:
                failure = failure_from_rpc_error(error)
                resumable = failure.code in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.CANCELLED,
                )
                # Only a stream that was serving is resumed: one that cannot start is refused.
                if not (resumable and self._ready_sent) or failures >= (
                    self._settings.ws_resume_attempts
                ):
                    raise close_for(failure) from None
                failures += 1
                log.warning("ws.upstream_resumed", code=failure.code.name, attempt=failures)
                await asyncio.sleep(0.2 * 2**failures)
                continue
            finally:
                call.cancel()
            return  # the service ended the stream: it is going away

    async def _relay(self, response: notification_pb2.SubscribeResponse) -> None:
        if response.WhichOneof("item") == "notification":
            item = response.notification
            shown = await self._shown(item)
            self._cursor = item.cursor
            if shown is not None:
                self._send(LiveNotification(cursor=item.cursor, notification=shown))
            return
        beat = response.heartbeat
        self._cursor = beat.cursor or self._cursor
        kind = "heartbeat" if self._ready_sent else "ready"
        self._ready_sent = True
        self._send(LivePosition(type=kind, cursor=self._cursor, sent_at=when(beat.sent_at)))

    async def _shown(self, item: notification_pb2.Notification) -> NotificationOut | None:
        """The notification with its actors' profiles; None when every actor has since
        deleted their account (it says nothing any more, as in the REST list)."""
        try:
            people = await self._actors(item.actor_ids)
        except grpc.aio.AioRpcError as error:
            # Profiles are a nicety here: the notification itself must not be held back.
            log.warning("ws.hydrate_failed", code=error.code().name)
            return NotificationOut.from_proto(item, {})
        if item.actor_ids and not any(actor in people for actor in item.actor_ids):
            return None
        return NotificationOut.from_proto(item, people)

    async def _actors(self, actor_ids: Sequence[str]) -> dict[str, auth_pb2.User]:
        """Profiles from auth's cards in Redis (gateway.people: one round trip, auth asked
        only for those it has not filled)."""
        return await self._edge.people.get(actor_ids)

    def _send(self, message: LiveNotification | LivePosition | LivePong) -> None:
        try:
            self._outbox.put_nowait(message.model_dump_json())
        except asyncio.QueueFull:
            raise Close(TRY_AGAIN_LATER, "too slow: messages were not read fast enough") from None

    # --- queue -> client ----------------------------------------------------------------------

    async def _downstream(self) -> None:
        while True:
            text = await self._outbox.get()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives as the send completes, and the relay would never stop.
                async with asyncio.timeout(self._settings.ws_send_timeout_seconds):
                    await self._ws.send_text(text)
            except TimeoutError:
                raise Close(TRY_AGAIN_LATER, "too slow: the socket accepted nothing") from None
            except (RuntimeError, OSError, WebSocketDisconnect):
                raise ClientGone from None

    async def _from_client(self) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                raise ClientGone
            if message.get("text") is None:
                raise Close(UNSUPPORTED_DATA, 'only text messages: {"type": "ping"}')
            if _is_ping(message["text"]):
                self._send(LivePong())
            else:
                raise Close(POLICY, 'clients may only send {"type": "ping"}')

    # --- the token ---------------------------------------------------------------------------

    async def _watch_token(self) -> None:
        claims, deny_list = self._claims, self._edge.deny_list
        while True:
            left = claims.expires_at - time.time()
            if left <= 0:
                raise Close(
                    UNAUTHORIZED, "token expired; reconnect with a fresh token and your cursor"
                )
            # Jittered, so sockets opened together do not all ask Redis in the same instant.
            check = self._settings.ws_token_check_seconds * random.uniform(0.8, 1.2)  # noqa: S311
            await asyncio.sleep(min(left, check))
            try:
                denied = await deny_list.is_denied(
                    claims.token_id, claims.user_id, claims.issued_at, claims.family_id
                )
            except (RedisError, OSError):
                continue  # Redis down: keep serving, as the REST routes do
            if denied:
                raise Close(
                    UNAUTHORIZED,
                    "token revoked (logged out, refresh token reused or account deleted)",
                )


def _is_ping(text: str) -> bool:
    try:
        parsed: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, Mapping) and parsed.get("type") == "ping"
