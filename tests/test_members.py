"""Inviting members, accepting, changing roles and removing, through GraphQL over HTTP."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest
from sqlalchemy import text

from tests.member_support import (
    ACCEPT,
    CHANGE_ROLE,
    INVITATIONS,
    INVITE,
    MEMBERS,
    PASSWORD,
    REMOVE,
    REVOKE_INVITATION,
    VIEWER,
    codes,
    invite,
    join,
    member_ids,
)

LOGIN = """mutation($input: LoginInput!) {
  login(input: $input) { accessToken userErrors { code } } }"""
REFRESH = """mutation($input: RefreshTokenInput!) {
  refreshToken(input: $input) { accessToken userErrors { code } } }"""
ACTIVITY = "{ activity(first: 20) { edges { node { kind actor data } } } }"


@pytest.fixture
async def client(app):
    """Each test from an address of its own: refused invitation tokens spend the address's failed
    sign-in budget, which the other tests' 127.0.0.1 must keep."""
    address = "10." + ".".join(str(b) for b in secrets.token_bytes(3))
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def _accept(gql, token: str, bearer: str | None = None, **extra) -> dict:
    return (await gql(ACCEPT, {"input": {"token": token, **extra}}, token=bearer))["acceptInvitation"]


async def test_invited_address_joins_with_its_role_and_the_log_says_so(gql, db, tenant_a):
    invited = await invite(gql, tenant_a.token, "  New.Viewer@Example.com ", "viewer")
    token, invitation = invited["token"], invited["invitation"]
    assert token.startswith("inv_") and len(token) > 40
    assert invitation["email"] == "new.viewer@example.com"
    assert (invitation["role"], invitation["status"]) == ("viewer", "pending")
    assert invitation["invitedBy"] == {"email": tenant_a.email}
    # Only the token's hash is kept.
    async with db.engine.connect() as conn:
        stored = (
            (
                await conn.execute(
                    text("SELECT * FROM control.invitations WHERE email = :e"), {"e": invitation["email"]}
                )
            )
            .mappings()
            .one()
        )
    import hashlib

    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(v) for v in stored.values()}
    pending = (await gql(INVITATIONS, token=tenant_a.token))["invitations"]["edges"]
    assert [e["node"]["email"] for e in pending] == ["new.viewer@example.com"]

    accepted = await _accept(gql, token, password=PASSWORD, name="Vera")
    assert accepted["userErrors"] == []
    assert (accepted["role"], accepted["tenant"]["slug"]) == ("viewer", tenant_a.slug)
    viewer = (await gql(VIEWER, token=accepted["accessToken"]))["viewer"]
    assert (viewer["role"], viewer["user"]["email"], viewer["tenant"]["slug"]) == (
        "viewer",
        "new.viewer@example.com",
        tenant_a.slug,
    )
    # The new account signs in with the password it chose.
    login = (await gql(LOGIN, {"input": {"email": "new.viewer@example.com", "password": PASSWORD}}))["login"]
    assert login["userErrors"] == [] and login["accessToken"]

    members = (await gql(MEMBERS, token=tenant_a.token))["members"]["edges"]
    assert [(m["node"]["user"]["email"], m["node"]["role"]) for m in members] == [
        (tenant_a.email, "owner"),
        ("new.viewer@example.com", "viewer"),
    ]
    assert all(m["node"]["joinedAt"] for m in members)
    assert members[1]["node"]["user"]["name"] == "Vera"
    assert (await gql(INVITATIONS, token=tenant_a.token))["invitations"]["edges"] == []
    closed = (await gql(INVITATIONS, {"all": True}, token=tenant_a.token))["invitations"]["edges"]
    assert [(e["node"]["status"], bool(e["node"]["acceptedAt"])) for e in closed] == [("accepted", True)]

    events = (await gql(ACTIVITY, token=tenant_a.token))["activity"]["edges"]
    kinds = {e["node"]["kind"]: e["node"] for e in events}
    assert kinds["member.invited"]["data"]["role"] == "viewer"
    assert kinds["member.invited"]["actor"] == tenant_a.email
    assert kinds["member.joined"]["data"]["email"] == "new.viewer@example.com"
    assert kinds["member.joined"]["data"]["new_account"] is True
    assert all(token not in str(e["node"]["data"]) for e in events)


async def test_a_token_is_single_use_even_when_raced(gql, tenant_a):
    token = (await invite(gql, tenant_a.token, "twice@example.com", "operator"))["token"]
    results = await asyncio.gather(*[_accept(gql, token, password=PASSWORD) for _ in range(3)])
    assert sorted(codes(r) for r in results) == [[], ["INVITATION_USED"], ["INVITATION_USED"]]
    again = await _accept(gql, token, password=PASSWORD)
    assert codes(again) == ["INVITATION_USED"] and again["accessToken"] is None


async def test_an_expired_invitation_is_refused_and_listed_as_expired(gql, tenant_a, settings_env):
    settings_env(INVITATION_TTL="1")
    token = (await invite(gql, tenant_a.token, "late@example.com", "viewer"))["token"]
    await asyncio.sleep(1.2)
    late = await _accept(gql, token, password=PASSWORD)
    assert [(e["code"], e["field"]) for e in late["userErrors"]] == [("INVITATION_EXPIRED", ["token"])]
    assert (await gql(INVITATIONS, token=tenant_a.token))["invitations"]["edges"] == []
    closed = (await gql(INVITATIONS, {"all": True}, token=tenant_a.token))["invitations"]["edges"]
    assert [e["node"]["status"] for e in closed] == ["expired"]
    # Inviting again sends a fresh, working token.
    settings_env(INVITATION_TTL="3600")
    fresh = (await invite(gql, tenant_a.token, "late@example.com", "viewer"))["token"]
    assert codes(await _accept(gql, fresh, password=PASSWORD)) == []


async def test_revoked_unknown_and_replaced_tokens(gql, tenant_a):
    first = await invite(gql, tenant_a.token, "someone@example.com", "finance")
    # Inviting the same address again replaces the live invitation: the first link stops working.
    second = await invite(gql, tenant_a.token, "someone@example.com", "viewer")
    assert codes(await _accept(gql, first["token"], password=PASSWORD)) == ["INVITATION_REVOKED"]
    revoked = (
        await gql(REVOKE_INVITATION, {"input": {"id": second["invitation"]["id"]}}, token=tenant_a.token)
    )["revokeInvitation"]
    assert revoked["userErrors"] == [] and revoked["invitation"]["status"] == "revoked"
    assert codes(await _accept(gql, second["token"], password=PASSWORD)) == ["INVITATION_REVOKED"]
    unknown = await _accept(gql, "inv_" + secrets.token_urlsafe(32), password=PASSWORD)
    assert [(e["code"], e["field"]) for e in unknown["userErrors"]] == [("INVALID_INVITATION", ["token"])]
    # An accepted invitation cannot be revoked; the membership is taken away with removeMember.
    third = await invite(gql, tenant_a.token, "kept@example.com", "viewer")
    assert codes(await _accept(gql, third["token"], password=PASSWORD)) == []
    late = (await gql(REVOKE_INVITATION, {"input": {"id": third["invitation"]["id"]}}, token=tenant_a.token))[
        "revokeInvitation"
    ]
    assert codes(late) == ["INVITATION_USED"]
    kinds = [e["node"]["kind"] for e in (await gql(ACTIVITY, token=tenant_a.token))["activity"]["edges"]]
    assert kinds.count("invitation.revoked") == 1  # a replaced invitation is logged by its successor


async def test_invite_refuses_bad_addresses_members_and_owner_grants_by_admins(gql, tenant_a):
    bad = (await gql(INVITE, {"input": {"email": "not-an-email", "role": "viewer"}}, token=tenant_a.token))[
        "inviteMember"
    ]
    assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [("INVALID_EMAIL", ["email"])]
    assert bad["token"] is None and bad["invitation"] is None
    member = (
        await gql(
            INVITE, {"input": {"email": tenant_a.email.upper(), "role": "viewer"}}, token=tenant_a.token
        )
    )["inviteMember"]
    assert codes(member) == ["ALREADY_MEMBER"]
    admin_token, _ = await join(gql, tenant_a.token, "admin")
    owner = (await gql(INVITE, {"input": {"email": "boss@example.com", "role": "owner"}}, token=admin_token))[
        "inviteMember"
    ]
    assert [(e["code"], e["field"]) for e in owner["userErrors"]] == [("OWNER_REQUIRED", ["role"])]
    # An owner may invite an owner; an admin may then neither replace nor revoke that invitation.
    boss = await invite(gql, tenant_a.token, "boss@example.com", "owner")
    replace = (
        await gql(INVITE, {"input": {"email": "boss@example.com", "role": "viewer"}}, token=admin_token)
    )["inviteMember"]
    assert codes(replace) == ["OWNER_REQUIRED"]
    revoke = (await gql(REVOKE_INVITATION, {"input": {"id": boss["invitation"]["id"]}}, token=admin_token))[
        "revokeInvitation"
    ]
    assert codes(revoke) == ["OWNER_REQUIRED"]
    assert codes(await _accept(gql, boss["token"], password=PASSWORD)) == []


async def test_a_new_account_follows_the_signup_password_rule(gql, tenant_a):
    token = (await invite(gql, tenant_a.token, "weak@example.com", "viewer"))["token"]
    for password in (None, "short"):
        weak = await _accept(gql, token, password=password)
        assert [(e["code"], e["field"]) for e in weak["userErrors"]] == [("WEAK_PASSWORD", ["password"])]
    # Nothing was used up by the refusals.
    assert codes(await _accept(gql, token, password=PASSWORD)) == []


async def test_an_existing_account_proves_itself_by_password_or_by_being_signed_in(gql, tenant_a, tenant_b):
    token = (await invite(gql, tenant_a.token, tenant_b.email, "operator"))["token"]
    assert codes(await _accept(gql, token)) == ["SIGN_IN_REQUIRED"]
    assert codes(await _accept(gql, token, password="not the password")) == ["INVALID_CREDENTIALS"]
    # Signed in as someone else: refused, even with that account's own password.
    stranger = await _accept(gql, token, bearer=tenant_a.token, password=tenant_b.password)
    assert codes(stranger) == ["EMAIL_MISMATCH"]
    joined = await _accept(gql, token, password=tenant_b.password)
    assert codes(joined) == [] and joined["role"] == "operator"
    viewer = (await gql(VIEWER, token=joined["accessToken"]))["viewer"]
    assert (viewer["role"], viewer["tenant"]["slug"]) == ("operator", tenant_a.slug)
    # Two tenants now: login asks which.
    login = (await gql(LOGIN, {"input": {"email": tenant_b.email, "password": tenant_b.password}}))["login"]
    assert codes(login) == ["TENANT_REQUIRED"]

    # A user signed in (to tenant A) accepts tenant B's invitation without a password.
    token = (await invite(gql, tenant_a.token, "second@example.com", "viewer"))["token"]
    second = await _accept(gql, token, password=PASSWORD)
    invite_b = (await invite(gql, tenant_b.token, "second@example.com", "finance"))["token"]
    signed_in = await _accept(gql, invite_b, bearer=second["accessToken"])
    assert codes(signed_in) == [] and signed_in["tenant"]["slug"] == tenant_b.slug
    assert (await gql(VIEWER, token=signed_in["accessToken"]))["viewer"]["role"] == "finance"
    assert codes(await _accept(gql, invite_b, bearer=second["accessToken"])) == ["INVITATION_USED"]


async def test_roles_change_owners_are_kept_and_removed_members_lose_access(gql, tenant_a):
    admin_token, admin_email = await join(gql, tenant_a.token, "admin")
    viewer_token, viewer_email = await join(gql, tenant_a.token, "viewer")
    ids = await member_ids(gql, tenant_a.token)
    owner_id, admin_id, viewer_id = ids[tenant_a.email][0], ids[admin_email][0], ids[viewer_email][0]

    async def change(token, member, role):
        return (await gql(CHANGE_ROLE, {"input": {"id": member, "role": role}}, token=token))[
            "changeMemberRole"
        ]

    async def remove(token, member):
        return (await gql(REMOVE, {"input": {"id": member}}, token=token))["removeMember"]

    # An admin cannot touch an owner nor make one, themselves included.
    assert codes(await change(admin_token, owner_id, "viewer")) == ["OWNER_REQUIRED"]
    assert codes(await change(admin_token, admin_id, "owner")) == ["OWNER_REQUIRED"]
    assert codes(await change(admin_token, viewer_id, "owner")) == ["OWNER_REQUIRED"]
    assert codes(await remove(admin_token, owner_id)) == ["OWNER_REQUIRED"]
    # The last owner can neither step down nor leave.
    assert [
        (e["code"], e["field"]) for e in (await change(tenant_a.token, owner_id, "admin"))["userErrors"]
    ] == [("LAST_OWNER", ["id"])]
    assert codes(await remove(tenant_a.token, owner_id)) == ["LAST_OWNER"]
    # An admin manages the others; the change counts on the member's next request.
    changed = await change(admin_token, viewer_id, "operator")
    assert changed["userErrors"] == [] and changed["member"]["role"] == "operator"
    assert (await gql(VIEWER, token=viewer_token))["viewer"]["role"] == "operator"
    # With a second owner, the first may step down.
    assert (await change(tenant_a.token, admin_id, "owner"))["userErrors"] == []
    assert (await change(tenant_a.token, owner_id, "admin"))["userErrors"] == []
    assert (await gql(VIEWER, token=tenant_a.token))["viewer"]["role"] == "admin"
    # Removal: the member's access and refresh tokens stop working at once.
    login = (await gql(LOGIN, {"input": {"email": viewer_email, "password": PASSWORD}}))["login"]
    removed = await remove(tenant_a.token, viewer_id)
    assert removed == {"removedMemberId": viewer_id, "userErrors": []}
    assert (await gql.raw(VIEWER, token=viewer_token)).status_code == 401
    assert login["accessToken"] and (await gql.raw(VIEWER, token=login["accessToken"])).status_code == 401
    assert codes(await remove(tenant_a.token, viewer_id)) == ["NOT_FOUND"]
    # An admin may leave (remove themselves).
    assert (await remove(tenant_a.token, owner_id))["userErrors"] == []
    assert (await gql.raw(VIEWER, token=tenant_a.token)).status_code == 401
    kinds = [e["node"]["kind"] for e in (await gql(ACTIVITY, token=admin_token))["activity"]["edges"]]
    assert kinds.count("member.role_changed") == 3 and kinds.count("member.removed") == 2


async def test_removed_member_refresh_tokens_are_revoked(gql, tenant_a):
    token = (await invite(gql, tenant_a.token, "leaver@example.com", "viewer"))["token"]
    accepted = await _accept(gql, token, password=PASSWORD)
    member = (await member_ids(gql, tenant_a.token))["leaver@example.com"][0]
    assert (await gql(REMOVE, {"input": {"id": member}}, token=tenant_a.token))["removeMember"][
        "userErrors"
    ] == []
    refreshed = (await gql(REFRESH, {"input": {"refreshToken": accepted["refreshToken"]}}))["refreshToken"]
    assert codes(refreshed) == ["INVALID_REFRESH_TOKEN"]
    # Invited back, the old refresh token still does not work: it was revoked, not just orphaned.
    again = (await invite(gql, tenant_a.token, "leaver@example.com", "viewer"))["token"]
    assert codes(await _accept(gql, again, password=PASSWORD)) == []
    refreshed = (await gql(REFRESH, {"input": {"refreshToken": accepted["refreshToken"]}}))["refreshToken"]
    assert codes(refreshed) == ["INVALID_REFRESH_TOKEN"]


async def test_two_owners_stepping_down_at_once_leave_one(gql, db, tenant_a):
    second_token, second_email = await join(gql, tenant_a.token, "owner")
    ids = await member_ids(gql, tenant_a.token)
    # Hold the activity log while both requests run: each gets as far as its log entry (after checking
    # that another owner remains) before either commits. Without serialisation both would pass.
    async with db.engine.connect() as conn:
        await conn.execute(
            text(f'LOCK TABLE "t_{tenant_a.slug}".activity_events IN SHARE ROW EXCLUSIVE MODE')
        )
        requests = [
            asyncio.create_task(
                gql(CHANGE_ROLE, {"input": {"id": ids[email][0], "role": "admin"}}, token=token)
            )
            for email, token in ((tenant_a.email, tenant_a.token), (second_email, second_token))
        ]
        await asyncio.sleep(0.5)
        await conn.rollback()
    results = await asyncio.gather(*requests)
    assert sorted(codes(r["changeMemberRole"]) for r in results) == [[], ["LAST_OWNER"]]
    roles = [role for _, role in (await member_ids(gql, tenant_a.token)).values()]
    assert sorted(roles) == ["admin", "owner"]


async def test_refused_tokens_are_rate_limited_like_sign_ins(gql, tenant_a, settings_env):
    token = (await invite(gql, tenant_a.token, "patient@example.com", "viewer"))["token"]
    settings_env(LOGIN_MAX_FAILURES="1")  # an address gets 4 failures
    for _ in range(4):
        assert codes(await _accept(gql, "inv_" + secrets.token_urlsafe(32), password=PASSWORD)) == [
            "INVALID_INVITATION"
        ]
    # The address is locked out: even the right token waits.
    assert codes(await _accept(gql, token, password=PASSWORD)) == ["TOO_MANY_ATTEMPTS"]
    login = (await gql(LOGIN, {"input": {"email": tenant_a.email, "password": tenant_a.password}}))["login"]
    assert codes(login) == ["TOO_MANY_ATTEMPTS"]


async def test_anonymous_and_unprivileged_callers_cannot_manage_members(gql, tenant_a):
    response = await gql.raw(INVITE, {"input": {"email": "x@example.com", "role": "viewer"}})
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    response = await gql.raw(INVITATIONS)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for role in ("operator", "finance", "viewer"):
        token, _ = await join(gql, tenant_a.token, role)
        for query, variables in (
            (INVITE, {"input": {"email": "x@example.com", "role": "viewer"}}),
            (INVITATIONS, None),
            (CHANGE_ROLE, {"input": {"id": "TWVtYmVyOjE=", "role": "owner"}}),
            (REMOVE, {"input": {"id": "TWVtYmVyOjE="}}),
            (REVOKE_INVITATION, {"input": {"id": "SW52aXRhdGlvbjox"}}),
        ):
            body = (await gql.raw(query, variables, token=token)).json()
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (role, query)
    # Nothing changed: still one owner, no pending invitation to x@example.com.
    assert [r for _, r in (await member_ids(gql, tenant_a.token)).values()].count("owner") == 1
    pending = (await gql(INVITATIONS, token=tenant_a.token))["invitations"]["edges"]
    assert "x@example.com" not in [e["node"]["email"] for e in pending]
