from tests.factories import make_user


async def test_register_login_me(client):
    user = await make_user(client)
    me = await client.get("/api/v1/auth/me/", headers=user.headers)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == user.email
