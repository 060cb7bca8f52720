"""Signup, login, tokens and API keys through the public GraphQL API."""

from __future__ import annotations

import pytest

from tests.conftest import CREATE_KEY, SIGNUP

VIEWER = "{ viewer { role scopes user { email } tenant { slug name } } }"
LOGIN = """mutation($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken expiresIn userErrors { field message code } } }"""
REFRESH = """mutation($input: RefreshTokenInput!) {
  refreshToken(input: $input) { accessToken refreshToken userErrors { code } } }"""
REVOKE = """mutation($input: RevokeApiKeyInput!) {
  revokeApiKey(input: $input) { apiKey { id revokedAt } userErrors { field message code } } }"""


def _signup_input(slug: str, email: str | None = None, password: str = "correct horse battery") -> dict:
    return {
        "input": {
            "organization": "Group",
            "tenantName": "Brand",
            "slug": slug,
            "email": email or f"o@{slug}.example.com",
            "password": password,
        }
    }


async def test_signup_provisions_schema_and_signs_owner_in(gql, db):
    # How long provisioning takes is measured in bench/tenants.py, not asserted here (CI machines vary).
    data = (await gql(SIGNUP, _signup_input("acme_shoes")))["signup"]
    assert data["userErrors"] == []
    assert data["tenant"]["slug"] == "acme_shoes"
    viewer = (await gql(VIEWER, token=data["accessToken"]))["viewer"]
    assert viewer["role"] == "owner"
    assert viewer["user"]["email"] == "o@acme_shoes.example.com"
    assert viewer["tenant"]["slug"] == "acme_shoes"
    async with db.engine.connect() as conn:
        from sqlalchemy import text

        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = 't_acme_shoes'"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert {"activity_events", "alembic_version"} <= set(tables)


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("a;drop schema control", "INVALID_SLUG"),
        ("ab", "INVALID_SLUG"),
        ("Upper", "INVALID_SLUG"),
        ("1abc", "INVALID_SLUG"),
        ("x" * 41, "INVALID_SLUG"),
        ("control", "INVALID_SLUG"),
        ("pg_catalog", "INVALID_SLUG"),
    ],
)
async def test_signup_rejects_bad_slugs(gql, slug, code):
    data = (await gql(SIGNUP, _signup_input(slug, email="bad@example.com")))["signup"]
    assert data["accessToken"] is None
    assert [(e["code"], e["field"]) for e in data["userErrors"]] == [(code, ["slug"])]


async def test_signup_rejects_bad_email_and_weak_password(gql):
    data = (await gql(SIGNUP, _signup_input("fine_slug", email="not-an-email")))["signup"]
    assert data["userErrors"][0]["code"] == "INVALID_EMAIL"
    data = (await gql(SIGNUP, _signup_input("fine_slug", password="short")))["signup"]
    assert data["userErrors"][0]["code"] == "WEAK_PASSWORD"


async def test_duplicate_signup_is_a_user_error_and_changes_nothing(gql, tenant_a, db):
    again = (await gql(SIGNUP, _signup_input(tenant_a.slug, email="someone.else@example.com")))["signup"]
    assert [e["code"] for e in again["userErrors"]] == ["SLUG_TAKEN"]
    same_email = (await gql(SIGNUP, _signup_input("other_brand_x", email=tenant_a.email)))["signup"]
    assert [e["code"] for e in same_email["userErrors"]] == ["EMAIL_TAKEN"]
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        exists = await conn.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = 't_other_brand_x'")
        )
    assert exists == 0, "a failed signup must not leave a schema behind"


async def test_concurrent_duplicate_signups_create_one_tenant(gql):
    import asyncio

    results = await asyncio.gather(
        *[gql(SIGNUP, _signup_input("race_brand", email=f"r{i}@example.com")) for i in range(4)]
    )
    ok = [r for r in results if not r["signup"]["userErrors"]]
    assert len(ok) == 1
    assert all(r["signup"]["userErrors"][0]["code"] == "SLUG_TAKEN" for r in results if r not in ok)


async def test_login_refresh_rotation_and_reuse_detection(gql, tenant_a):
    login = (await gql(LOGIN, {"input": {"email": tenant_a.email.upper(), "password": tenant_a.password}}))[
        "login"
    ]
    assert login["userErrors"] == [] and login["expiresIn"] > 0
    first = (await gql(REFRESH, {"input": {"refreshToken": login["refreshToken"]}}))["refreshToken"]
    assert first["userErrors"] == [] and first["refreshToken"] != login["refreshToken"]
    assert (await gql(VIEWER, token=first["accessToken"]))["viewer"]["role"] == "owner"
    # Reusing the rotated token is refused, and it revokes the whole family (the new token too).
    reuse = (await gql(REFRESH, {"input": {"refreshToken": login["refreshToken"]}}))["refreshToken"]
    assert [e["code"] for e in reuse["userErrors"]] == ["INVALID_REFRESH_TOKEN"]
    after = (await gql(REFRESH, {"input": {"refreshToken": first["refreshToken"]}}))["refreshToken"]
    assert [e["code"] for e in after["userErrors"]] == ["INVALID_REFRESH_TOKEN"]


async def test_wrong_password_and_rate_limit(gql, tenant_a):
    from app.config import get_settings

    for _ in range(get_settings().login_max_failures):
        bad = (await gql(LOGIN, {"input": {"email": tenant_a.email, "password": "wrong password!"}}))["login"]
        assert [e["code"] for e in bad["userErrors"]] == ["INVALID_CREDENTIALS"]
    # Now even the right password is refused until the window passes.
    locked = (await gql(LOGIN, {"input": {"email": tenant_a.email, "password": tenant_a.password}}))["login"]
    assert [e["code"] for e in locked["userErrors"]] == ["TOO_MANY_ATTEMPTS"]
    assert locked["accessToken"] is None


async def test_unknown_user_gets_the_same_error_as_a_wrong_password(gql):
    res = (await gql(LOGIN, {"input": {"email": "nobody@example.com", "password": "whatever123"}}))["login"]
    assert [e["code"] for e in res["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_bad_expired_and_malformed_tokens_get_401(gql, tenant_a):
    from tenants.security import issue_access_token

    for token in ("garbage", tenant_a.token[:-4] + "AAAA", "oms_notakey"):
        response = await gql.raw(VIEWER, token=token)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # A correctly signed but expired token.
    viewer = (await gql(VIEWER, token=tenant_a.token))["viewer"]
    assert viewer["role"] == "owner"
    from joserfc import jwt

    claims = jwt.decode(tenant_a.token, __import__("tenants.security").security._key()).claims
    expired = issue_access_token(int(claims["sub"]), claims["tid"], "owner", ttl_s=-60)
    response = await gql.raw(VIEWER, token=expired)
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


async def test_anonymous_caller_is_unauthenticated_not_crashing(gql):
    response = await gql.raw(VIEWER)
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_api_key_scopes_revocation_and_last_used(gql, tenant_a):
    created = (
        await gql(CREATE_KEY, {"input": {"name": "reader", "scopes": ["tenant:read"]}}, token=tenant_a.token)
    )["createApiKey"]
    key, key_id = created["key"], created["apiKey"]["id"]
    assert key.startswith("oms_")
    viewer = (await gql(VIEWER, api_key=key))["viewer"]
    assert viewer["scopes"] == ["tenant:read"] and viewer["user"] is None
    # Bearer form works too.
    assert (await gql(VIEWER, token=key))["viewer"]["tenant"]["slug"] == tenant_a.slug
    # A read-only key cannot create keys: FORBIDDEN, not a crash.
    denied = await gql.raw(CREATE_KEY, {"input": {"name": "x", "scopes": ["tenant:read"]}}, api_key=key)
    assert denied.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = await gql("{ apiKeys { edges { node { id lastUsedAt } } } }", token=tenant_a.token)
    used = {e["node"]["id"]: e["node"]["lastUsedAt"] for e in listed["apiKeys"]["edges"]}
    assert used[key_id] is not None
    revoked = (await gql(REVOKE, {"input": {"id": key_id}}, token=tenant_a.token))["revokeApiKey"]
    assert revoked["userErrors"] == [] and revoked["apiKey"]["revokedAt"]
    response = await gql.raw(VIEWER, api_key=key)
    assert response.status_code == 401


async def test_api_key_with_unknown_scope_is_rejected(gql, tenant_a):
    res = (
        await gql(
            CREATE_KEY, {"input": {"name": "x", "scopes": ["orders:read", "root"]}}, token=tenant_a.token
        )
    )["createApiKey"]
    assert res["key"] is None
    assert [(e["code"], e["field"]) for e in res["userErrors"]] == [("INVALID_SCOPE", ["scopes"])]
