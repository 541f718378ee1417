"""Accounts and tokens through the real gateway: what a client of the API sees."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

from tests.factories import PASSWORD, make_user, new_identity, register
from tests.support.problems import assert_problem, trace_id_of

if TYPE_CHECKING:  # imported by name, pytest would try to collect it as a test class
    from tests.factories import TestUser

ME = "/api/v1/auth/me/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login/", json={"email": email, "password": password})


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh/", json={"refresh": token})


async def me(client: httpx.AsyncClient, access: str) -> httpx.Response:
    return await client.get(ME, headers=bearer(access))


async def delete_account(
    client: httpx.AsyncClient, user: TestUser, password: str
) -> httpx.Response:
    return await client.request("DELETE", ME, headers=user.headers, json={"password": password})


def assert_refused(response: httpx.Response) -> None:
    """A 401 problem that tells the client how to authenticate."""
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- register and login ---------------------------------------------------------------------


async def test_register_with_the_verbatim_spec_call(client) -> None:
    identity = new_identity()
    body = {**identity, "password": PASSWORD, "password_confirm": PASSWORD}
    answer = await client.post("/api/v1/auth/register/", json=body)
    assert answer.status_code == 201, answer.text
    user = answer.json()
    assert uuid.UUID(user["id"])
    assert (user["email"], user["username"], user["role"]) == (
        identity["email"],
        identity["username"],
        "user",
    )
    assert not {key for key in user if "password" in key or "hash" in key}
    assert PASSWORD not in answer.text


async def test_login_with_the_verbatim_spec_call_returns_a_token_pair(client) -> None:
    identity = new_identity()
    assert (await register(client, **identity)).status_code == 201
    answer = await client.post(
        "/api/v1/auth/login/", json={"email": identity["email"], "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["access"] != tokens["refresh"]
    assert jwt.get_unverified_header(tokens["access"])["alg"] == "ES256"
    assert tokens["user"]["email"] == identity["email"]
    assert (await me(client, tokens["access"])).status_code == 200


async def test_paths_without_the_trailing_slash_work(client) -> None:
    identity = new_identity()
    body = {**identity, "password": PASSWORD, "password_confirm": PASSWORD}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    tokens = await client.post(
        "/api/v1/auth/login", json={"email": identity["email"], "password": PASSWORD}
    )
    assert tokens.status_code == 200, tokens.text
    account = await client.get("/api/v1/auth/me", headers=bearer(tokens.json()["access"]))
    assert account.status_code == 200
    assert account.json()["username"] == identity["username"]


async def test_email_is_normalised_to_lower_case(client) -> None:
    tag = secrets.token_hex(5)
    answer = await register(client, email=f"  Mixed.Case_{tag}@Example.COM ")
    assert answer.status_code == 201, answer.text
    email = f"mixed.case_{tag}@example.com"
    assert answer.json()["email"] == email
    # Signing in works whatever case the user types.
    assert (await login(client, email.upper())).status_code == 200


@pytest.mark.parametrize(
    ("field", "variant", "reason"),
    [
        ("email", str.upper, "email-taken"),
        ("username", str.upper, "username-taken"),
        ("email", str, "email-taken"),
    ],
)
async def test_a_taken_email_or_username_is_a_conflict(client, field, variant, reason) -> None:
    first = await make_user(client)
    clash = {**new_identity(), field: variant(getattr(first, field))}
    answer = await register(client, **clash)
    assert_problem(answer, 409, reason=reason, fields=(field,))
    # The original account is untouched.
    assert (await login(client, first.email)).json()["user"]["id"] == first.id


# --- the account -----------------------------------------------------------------------------


async def test_profile_changes_persist(client) -> None:
    user = await make_user(client)
    patch = {"display_name": "Ada Lovelace", "bio": "Poetical science"}
    answer = await client.patch(ME, headers=user.headers, json=patch)
    assert answer.status_code == 200, answer.text
    assert answer.json().items() >= patch.items()
    again = await me(client, user.access)
    assert again.json().items() >= patch.items()
    public = await client.get(f"/api/v1/users/{user.id}/")
    assert public.json().items() >= patch.items()


@pytest.mark.parametrize(
    ("field", "value"),
    [("role", "admin"), ("is_staff", True), ("email", "evil@example.com"), ("karma", 9000)],
)
async def test_patch_refuses_privileged_or_unknown_fields(client, field, value) -> None:
    user = await make_user(client)
    before = (await me(client, user.access)).json()
    answer = await client.patch(
        ME, headers=user.headers, json={"display_name": "Sneaky", field: value}
    )
    assert_problem(answer, 422, fields=(field,))
    after = (await me(client, user.access)).json()
    assert after == before
    assert after["role"] == "user"
    # A fresh login (new token, role read from the database) is still a plain user.
    assert (await login(client, user.email)).json()["user"]["role"] == "user"


async def test_patch_refuses_an_over_long_bio_and_keeps_the_old_one(client) -> None:
    user = await make_user(client)
    assert (await client.patch(ME, headers=user.headers, json={"bio": "kept"})).status_code == 200
    answer = await client.patch(ME, headers=user.headers, json={"bio": "x" * 1500})
    assert_problem(answer, 422, fields=("bio",))
    assert (await me(client, user.access)).json()["bio"] == "kept"


# --- refresh rotation and logout ------------------------------------------------------------


async def test_refresh_rotates_the_pair(client) -> None:
    user = await make_user(client)
    answer = await refresh(client, user.refresh)
    assert answer.status_code == 200, answer.text
    pair = answer.json()
    assert pair["refresh"] != user.refresh
    assert pair["access"] != user.access
    assert (await me(client, pair["access"])).json()["id"] == user.id
    # The new refresh token is good for one more rotation.
    assert (await refresh(client, pair["refresh"])).status_code == 200


async def test_reusing_a_refresh_token_revokes_the_whole_family(client) -> None:
    user = await make_user(client)
    rotated = (await refresh(client, user.refresh)).json()
    assert_refused(await refresh(client, user.refresh))
    # The thief (or the owner) who holds the newer token is cut off too.
    assert_refused(await refresh(client, rotated["refresh"]))


async def test_reusing_a_refresh_token_refuses_the_familys_access_tokens_at_once(client) -> None:
    user = await make_user(client)
    other_session = (await login(client, user.email)).json()
    rotated = (await refresh(client, user.refresh)).json()
    assert (await me(client, user.access)).status_code == 200
    assert (await me(client, rotated["access"])).status_code == 200

    assert_refused(await refresh(client, user.refresh))  # reuse: the family is stolen
    # Neither the access token issued at login nor the one from the rotation works any
    # more, although both are minutes from their expiry; another login is untouched.
    for access in (user.access, rotated["access"]):
        answer = await me(client, access)
        assert_refused(answer)
        assert_problem(answer, 401, reason="token-revoked")
    assert (await me(client, other_session["access"])).status_code == 200


async def test_reuse_revokes_only_that_login(client) -> None:
    user = await make_user(client)
    other_session = (await login(client, user.email)).json()
    await refresh(client, user.refresh)
    await refresh(client, user.refresh)  # reuse: this login's family is revoked
    assert (await refresh(client, other_session["refresh"])).status_code == 200


async def test_logout_refuses_the_access_and_the_refresh_token(client) -> None:
    user = await make_user(client)
    answer = await client.post(
        "/api/v1/auth/logout/", headers=user.headers, json={"refresh": user.refresh}
    )
    assert answer.status_code == 204, answer.text
    assert_refused(await me(client, user.access))
    assert_refused(await refresh(client, user.refresh))


async def test_logout_ends_only_this_session(client) -> None:
    user = await make_user(client)
    other = (await login(client, user.email)).json()
    await client.post("/api/v1/auth/logout/", headers=user.headers, json={"refresh": user.refresh})
    assert (await me(client, other["access"])).status_code == 200
    assert (await refresh(client, other["refresh"])).status_code == 200


# --- signing keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/auth/jwks/", "/.well-known/jwks.json"])
async def test_access_tokens_verify_with_the_published_jwks(client, path) -> None:
    user = await make_user(client)
    answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    keys = answer.json()["keys"]
    assert all("d" not in key for key in keys), "a private key is published"
    kid = jwt.get_unverified_header(user.access)["kid"]
    jwk = next(key for key in keys if key["kid"] == kid)
    claims = jwt.decode(
        user.access,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience="zap-api",
        issuer="zap-auth",
    )
    assert (claims["sub"], claims["typ"]) == (user.id, "access")
    assert 0 < claims["exp"] - claims["iat"] <= 900


# --- public profiles ------------------------------------------------------------------------


async def _profiles(client: httpx.AsyncClient, user: TestUser) -> list[dict[str, Any]]:
    answers = [
        await client.get(f"/api/v1/users/{user.id}/"),
        await client.get(f"/api/v1/users/by-username/{user.username}/"),
        await client.get(f"/api/v1/users/by-username/{user.username.upper()}/"),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    return [answer.json() for answer in answers]


async def test_public_profiles_never_show_email_or_role(client) -> None:
    user = await make_user(client)
    viewer = await make_user(client)
    for headers in ({}, viewer.headers, user.headers):
        client.headers.update(headers)
        for profile in await _profiles(client, user):
            assert (profile["id"], profile["username"]) == (user.id, user.username)
            assert not {"email", "role", "password", "password_hash"} & profile.keys()
            assert user.email not in str(profile)
        client.headers.pop("Authorization", None)


@pytest.mark.parametrize(
    "path",
    [f"/api/v1/users/{uuid.uuid4()}/", "/api/v1/users/by-username/nobody_here_at_all/"],
)
async def test_unknown_users_are_not_found(client, path) -> None:
    assert_problem(await client.get(path), 404)


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "1%20OR%201=1"])
async def test_a_malformed_user_id_is_a_validation_problem(client, bad_id) -> None:
    assert_problem(await client.get(f"/api/v1/users/{bad_id}/"), 422, fields=("user_id",))


# --- account deletion -----------------------------------------------------------------------


async def test_deletion_with_the_wrong_password_changes_nothing(client) -> None:
    user = await make_user(client)
    answer = await delete_account(client, user, "not my password at all")
    # 403, not 401: a client must not take a typo for an expired session.
    assert_problem(answer, 403, reason="password-incorrect")
    assert (await me(client, user.access)).status_code == 200
    assert (await login(client, user.email)).status_code == 200
    assert (await client.get(f"/api/v1/users/{user.id}/")).status_code == 200


async def test_deletion_ends_the_account_at_once(client) -> None:
    user = await make_user(client)
    answer = await delete_account(client, user, PASSWORD)
    assert answer.status_code in (200, 202, 204), answer.text
    assert_refused(await login(client, user.email))
    assert_refused(await me(client, user.access))
    assert_refused(await refresh(client, user.refresh))
    assert_problem(await client.get(f"/api/v1/users/{user.id}/"), 404)
    assert_problem(await client.get(f"/api/v1/users/by-username/{user.username}/"), 404)


# --- headers --------------------------------------------------------------------------------


async def test_responses_with_tokens_or_account_data_are_not_cached(client) -> None:
    identity = new_identity()
    answers = [await register(client, **identity)]
    answers.append(await login(client, identity["email"]))
    tokens = answers[-1].json()
    answers.append(await refresh(client, tokens["refresh"]))
    answers.append(await me(client, tokens["access"]))
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200]
    for answer in answers:
        assert "no-store" in answer.headers["cache-control"], answer.request.url


@pytest.mark.parametrize("authorised", [True, False])
async def test_a_sent_traceparent_is_continued(client, authorised) -> None:
    trace_id = secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    headers = {"traceparent": f"00-{trace_id}-{span_id}-01"}
    if authorised:
        headers |= (await make_user(client)).headers
    answer = await client.get(ME, headers=headers)
    assert trace_id_of(answer) == trace_id
    if authorised:
        assert answer.status_code == 200
    else:
        assert assert_problem(answer, 401)["trace_id"] == trace_id


async def test_an_invalid_traceparent_is_replaced_by_a_new_trace(client) -> None:
    answer = await client.get("/api/v1/users/nope/", headers={"traceparent": "00-zz-bad-01"})
    body = assert_problem(answer, 422)
    assert body["trace_id"] == trace_id_of(answer)
