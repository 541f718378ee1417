"""Hostile input and hostile tokens against the auth routes, through the real gateway."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.auth.tokens.keys import KeyRing
from tests.factories import PASSWORD, make_user, new_identity
from tests.support.problems import assert_problem
from tests.support.stack import Stack, gateway_settings, serve_gateway

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"
ME = "/api/v1/auth/me/"
MIB = 1024 * 1024


def valid_registration() -> dict[str, Any]:
    return {**new_identity(), "password": PASSWORD, "password_confirm": PASSWORD}


@contextlib.asynccontextmanager
async def gateway(stack: Stack, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway on the same auth service, with some settings changed."""
    async with (
        serve_gateway(stack.platform, gateway_settings(**overrides)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield http


def assert_rate_limited(response: httpx.Response) -> None:
    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1


# --- invalid registrations ------------------------------------------------------------------


def _without(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(field)


def _setting(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.update(values)


def _password(value: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.update(password=value, password_confirm=value)


def _password_with_username(body: dict[str, Any]) -> None:
    _password(f"{body['username']}-is-my-password")(body)


INVALID_REGISTRATIONS = {
    "missing email": (_without("email"), "email"),
    "missing username": (_without("username"), "username"),
    "missing password": (_without("password"), "password"),
    "missing password_confirm": (_without("password_confirm"), "password_confirm"),
    "email is a number": (_setting(email=12345), "email"),
    "username is a list": (_setting(username=["root"]), "username"),
    "password is null": (_setting(password=None), "password"),
    "password_confirm is an object": (_setting(password_confirm={"a": 1}), "password_confirm"),
    "confirmation mismatch": (_setting(password_confirm=PASSWORD + "!"), "password_confirm"),
    "short password": (_password("short"), "password"),
    "common password": (_password("password123"), "password"),
    "password contains the username": (_password_with_username, "password"),
    "over-long password": (_password("p" * 200), "password"),
    "password over the edge limit": (_password("p" * 2000), "password"),
    "email without at": (_setting(email="not-an-email"), "email"),
    "email without domain": (_setting(email="someone@"), "email"),
    "username with spaces": (_setting(username="has spaces here"), "username"),
    "username too long for the account": (_setting(username="u" * 31), "username"),
    "username too long for the edge": (_setting(username="u" * 65), "username"),
    "username too short": (_setting(username="ab"), "username"),
    "username with markup": (_setting(username="<script>"), "username"),
    "reserved username": (_setting(username="admin"), "username"),
    "sneaked role": (_setting(role="admin"), "role"),
}


@pytest.mark.parametrize(
    ("mutate", "field"), INVALID_REGISTRATIONS.values(), ids=INVALID_REGISTRATIONS.keys()
)
async def test_invalid_registration_is_refused_and_creates_nothing(client, mutate, field) -> None:
    valid = valid_registration()
    hostile = dict(valid)
    mutate(hostile)
    answer = await client.post(REGISTER, json=hostile)
    assert_problem(answer, 422, fields=(field,))
    # No account exists, whichever password it would have had.
    tried = hostile.get("password")
    for password in (
        {PASSWORD, tried} if isinstance(tried, str) and len(tried) <= 1024 else {PASSWORD}
    ):
        login = await client.post(LOGIN, json={"email": valid["email"], "password": password})
        assert login.status_code == 401
    # Neither the email nor the username was taken by the refused attempt.
    assert (await client.post(REGISTER, json=valid)).status_code == 201


@pytest.mark.parametrize("body", [[], "text", 42, None], ids=["list", "string", "number", "null"])
async def test_a_body_that_is_not_an_object_is_refused(client, body) -> None:
    assert_problem(await client.post(REGISTER, json=body), 422)


@pytest.mark.parametrize("raw", [b"{", b'{"email": "a@b.c",}', b"\xff\xfe", b"{'email': 'a@b.c'}"])
async def test_malformed_json_is_a_bad_request(client, raw) -> None:
    answer = await client.post(REGISTER, content=raw, headers={"content-type": "application/json"})
    assert_problem(answer, 400, reason="malformed-json")


async def test_a_body_over_one_mebibyte_is_refused(client) -> None:
    body = valid_registration() | {"display_name": "x" * (MIB + 1)}
    assert_problem(await client.post(REGISTER, json=body), 413, reason="body-too-large")


async def test_a_chunked_body_over_one_mebibyte_is_refused(client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"display_name": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    answer = await client.post(
        REGISTER, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in answer.request.headers
    assert_problem(answer, 413, reason="body-too-large")


async def test_a_body_just_under_the_limit_is_read(client) -> None:
    # Proves the 413 above is about size: a big body below the limit gets field errors.
    body = valid_registration() | {"display_name": "x" * (MIB - 200)}
    assert_problem(await client.post(REGISTER, json=body), 422, fields=("display_name",))


# --- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v1/auth/nope", "/nowhere"])
async def test_unknown_routes_are_not_found_problems(client, path) -> None:
    assert_problem(await client.get(path), 404, reason="not-found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", LOGIN), ("PUT", REGISTER), ("POST", ME), ("GET", "/api/v1/auth/refresh/")],
)
async def test_wrong_methods_are_not_allowed_problems(client, method, path) -> None:
    answer = await client.request(method, path)
    assert_problem(answer, 405, reason="method-not-allowed")
    assert answer.headers["allow"]


# --- hostile tokens -------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    encode = lambda part: _b64(json.dumps(part).encode())  # noqa: E731
    return f"{encode(header)}.{encode(claims)}.{_b64(signature)}"


class Forger:
    """Makes tokens for a real user, signed with the real key or with something else."""

    def __init__(self, ring: KeyRing, user_id: str) -> None:
        self.ring = ring
        self.user_id = user_id

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": "zap-auth",
            "aud": "zap-api",
            "sub": self.user_id,
            "iat": now,
            "exp": now + 600,
            "jti": str(uuid.uuid4()),
            "typ": "access",
            "role": "admin",
            **changes,
        }
        return {name: value for name, value in claims.items() if value is not None}

    def real(self, **changes: Any) -> str:
        """Signed by auth's own key: only the claims are wrong."""
        return self.signed(self.ring.signing_key, self.ring.active_kid, **changes)

    def signed(self, key: ec.EllipticCurvePrivateKey, kid: str, **changes: Any) -> str:
        return jwt.encode(self.claims(**changes), key, algorithm="ES256", headers={"kid": kid})

    def alg_none(self) -> str:
        return _unsigned({"alg": "none", "typ": "JWT", "kid": self.ring.active_kid}, self.claims())

    def hs256_with_public_key(self) -> str:
        pem = self.ring.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "typ": "JWT", "kid": self.ring.active_kid}
        unsigned = _unsigned(header, self.claims()).rsplit(".", 1)[0]
        signature = hmac.new(pem, unsigned.encode(), hashlib.sha256).digest()
        return f"{unsigned}.{_b64(signature)}"

    def tampered(self) -> str:
        """A genuine user token whose payload was edited to claim the admin role."""
        header, _, signature = self.real(role="user").split(".")
        return f"{header}.{_b64(json.dumps(self.claims(role='admin')).encode())}.{signature}"


@pytest.fixture
async def forger(stack, client) -> Forger:
    user = await make_user(client)
    return Forger(KeyRing.load(stack.auth_settings.signing_keys_dir), user.id)


def _stranger() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


HOSTILE_TOKENS: dict[str, Callable[[Forger], str]] = {
    "garbage": lambda f: "not-a-jwt",
    "three dots of nothing": lambda f: "a.b.c",
    "header is not an object": lambda f: f"{_b64(b'[1]')}.{_b64(b'{}')}.",
    "header is not json": lambda f: f"{_b64(b'{nope')}.{_b64(b'{}')}.",
    "alg none": lambda f: f.alg_none(),
    "HS256 keyed with the public key": lambda f: f.hs256_with_public_key(),
    "payload edited after signing": lambda f: f.tampered(),
    "unknown key id": lambda f: f.signed(_stranger(), "20990101000000-deadbeef"),
    "real key id, foreign key": lambda f: f.signed(_stranger(), f.ring.active_kid),
    "no key id": lambda f: jwt.encode(f.claims(), f.ring.signing_key, algorithm="ES256"),
    "wrong audience": lambda f: f.real(aud="zap-internal"),
    "wrong issuer": lambda f: f.real(iss="evil-auth"),
    "expired": lambda f: f.real(iat=int(time.time()) - 3600, exp=int(time.time()) - 1800),
    "no expiry": lambda f: f.real(exp=None),
    "no token id": lambda f: f.real(jti=None),
    "no type": lambda f: f.real(typ=None),
    "refresh type": lambda f: f.real(typ="refresh"),
    "subject is not a uuid": lambda f: f.real(sub="1"),
}


@pytest.mark.parametrize("make_token", HOSTILE_TOKENS.values(), ids=HOSTILE_TOKENS.keys())
async def test_hostile_access_tokens_are_refused(client, forger, make_token) -> None:
    answer = await client.get(ME, headers={"Authorization": f"Bearer {make_token(forger)}"})
    assert_problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "token"},
    ],
    ids=["missing", "empty bearer", "basic", "no scheme"],
)
async def test_requests_without_a_bearer_token_are_refused(client, headers) -> None:
    answer = await client.get(ME, headers=headers)
    assert_problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_refresh_token_is_not_an_access_token(client) -> None:
    user = await make_user(client)
    answer = await client.get(ME, headers={"Authorization": f"Bearer {user.refresh}"})
    assert_problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_an_access_token_is_not_a_refresh_token(client) -> None:
    user = await make_user(client)
    answer = await client.post("/api/v1/auth/refresh/", json={"refresh": user.access})
    assert_problem(answer, 401)


async def test_a_well_signed_token_with_wrong_claims_is_no_key_to_the_account(
    client, forger
) -> None:
    # Control: the forger's own correct token does work, so the refusals above are about
    # the one thing each hostile token gets wrong.
    answer = await client.get(ME, headers={"Authorization": f"Bearer {forger.real()}"})
    assert answer.status_code == 200
    assert answer.json()["id"] == forger.user_id


# --- sign-in guessing -----------------------------------------------------------------------


def _comparable(response: httpx.Response) -> tuple[int, dict[str, Any], str | None]:
    body = {key: value for key, value in response.json().items() if key != "trace_id"}
    return response.status_code, body, response.headers.get("www-authenticate")


async def test_unknown_email_and_wrong_password_look_the_same(client) -> None:
    user = await make_user(client)
    unknown = await client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    wrong = await client.post(LOGIN, json={"email": user.email, "password": PASSWORD + "x"})
    assert_problem(unknown, 401)
    assert _comparable(unknown) == _comparable(wrong)


async def test_repeated_failed_logins_are_throttled(stack, client) -> None:
    user = await make_user(client)
    other = await make_user(client)
    attempt = {"email": user.email, "password": "wrong password, again"}
    for n in range(stack.auth_settings.login_failures_per_client):
        # Changing the case of the email does not buy more guesses.
        guess = attempt | {"email": user.email.upper() if n % 2 else user.email}
        assert (await client.post(LOGIN, json=guess)).status_code == 401
    assert_rate_limited(await client.post(LOGIN, json=attempt))
    # Guessing is over for this account from this address, even with the right password...
    assert_rate_limited(await client.post(LOGIN, json=attempt | {"password": PASSWORD}))
    # ...but the address is not banned for everyone else's account.
    other_login = await client.post(LOGIN, json={"email": other.email, "password": PASSWORD})
    assert other_login.status_code == 200


async def test_guessing_from_many_addresses_does_not_lock_the_owner_out(stack) -> None:
    async with gateway(stack, trusted_proxies=["127.0.0.1/32"]) as http:

        def from_ip(address: str) -> dict[str, str]:
            return {"X-Forwarded-For": address}

        user = await make_user(http)  # signs in from 127.0.0.1: a known address
        wrong = {"email": user.email, "password": "guess guess guess"}
        for n in range(stack.auth_settings.login_failures_per_account):
            answer = await http.post(LOGIN, json=wrong, headers=from_ip(f"198.51.100.{n + 1}"))
            assert answer.status_code == 401
        right = {"email": user.email, "password": PASSWORD}
        assert_rate_limited(await http.post(LOGIN, json=right, headers=from_ip("203.0.113.9")))
        assert (await http.post(LOGIN, json=right)).status_code == 200


async def test_guessing_the_password_to_delete_the_account_is_throttled_like_login(
    stack, client
) -> None:
    # Someone holding a stolen access token tries passwords on the re-confirmation.
    user = await make_user(client)
    wrong = {"password": "wrong password, again"}
    for _ in range(stack.auth_settings.login_failures_per_client):
        answer = await client.request("DELETE", ME, json=wrong, headers=user.headers)
        assert_problem(answer, 403, reason="password-incorrect")
    assert_rate_limited(await client.request("DELETE", ME, json=wrong, headers=user.headers))
    # The right password does not get through either while guessing is throttled...
    right = {"password": PASSWORD}
    assert_rate_limited(await client.request("DELETE", ME, json=right, headers=user.headers))
    assert (await client.get(ME, headers=user.headers)).status_code == 200
    # ...and the guesses spent here are spent for signing in too: one budget per account.
    login = await client.post(LOGIN, json={"email": user.email, "password": PASSWORD})
    assert_rate_limited(login)


async def test_registration_is_rate_limited_per_address(stack) -> None:
    async with gateway(stack, rate_limit_register="3/minute") as http:
        for _ in range(3):
            assert (await http.post(REGISTER, json=valid_registration())).status_code == 201
        refused = valid_registration()
        assert_rate_limited(await http.post(REGISTER, json=refused))
        # The refused registration did not happen.
        login = await http.post(LOGIN, json={"email": refused["email"], "password": PASSWORD})
        assert login.status_code == 401


async def test_login_is_rate_limited_per_address(stack) -> None:
    async with gateway(stack, rate_limit_login="2/minute") as http:
        user = await make_user(http)  # the first login
        body = {"email": user.email, "password": PASSWORD}
        assert (await http.post(LOGIN, json=body)).status_code == 200
        assert_rate_limited(await http.post(LOGIN, json=body))


# --- bytes the database cannot store ---------------------------------------------------------


async def test_nul_bytes_are_refused_not_crashed_on(client) -> None:
    user = await make_user(client)
    for email in ["\x00", f"{user.email}\x00", "a\x00b@example.com"]:
        # Refused at the edge like every other string, whether the account exists or not.
        answer = await client.post(LOGIN, json={"email": email, "password": PASSWORD})
        assert_problem(answer, 422, reason="validation-error", fields=("email",))
    for name in ["%00", f"{user.username}%00"]:
        assert_problem(await client.get(f"/api/v1/users/by-username/{name}/"), 404)
    patch = {"avatar_url": "https://cdn.example.com/a\x00.jpg"}
    answer = await client.patch(ME, headers=user.headers, json=patch)
    assert_problem(answer, 422, fields=("avatar_url",))
    assert (await client.get(ME, headers=user.headers)).json()["avatar_url"] == ""


# --- races and other people's tokens ---------------------------------------------------------


async def test_concurrent_registrations_of_one_identity_make_one_account(client) -> None:
    body = valid_registration()
    answers = await asyncio.gather(*(client.post(REGISTER, json=body) for _ in range(4)))
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409)


async def test_a_refresh_token_replayed_concurrently_leaves_no_live_session(client) -> None:
    user = await make_user(client)
    answers = await asyncio.gather(
        *(client.post("/api/v1/auth/refresh/", json={"refresh": user.refresh}) for _ in range(4))
    )
    winners = [answer for answer in answers if answer.status_code == 200]
    assert len(winners) <= 1
    for winner in winners:
        again = await client.post(
            "/api/v1/auth/refresh/", json={"refresh": winner.json()["refresh"]}
        )
        assert_problem(again, 401)


async def test_logging_out_with_someone_elses_refresh_token_does_not_end_their_session(
    client,
) -> None:
    victim = await make_user(client)
    attacker = await make_user(client)
    await client.post(
        "/api/v1/auth/logout/", headers=attacker.headers, json={"refresh": victim.refresh}
    )
    answer = await client.post("/api/v1/auth/refresh/", json={"refresh": victim.refresh})
    assert answer.status_code == 200, answer.text
