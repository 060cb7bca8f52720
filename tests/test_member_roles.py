"""Each role, held by a really invited user, can do what DESIGN's role table says and no more; and
members of one tenant cannot reach another's."""

from __future__ import annotations

import base64

import pytest

from tests.member_support import (
    CHANGE_ROLE,
    INVITATIONS,
    MEMBERS,
    REMOVE,
    REVOKE_INVITATION,
    VIEWER,
    codes,
    join,
)


def _gid(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


PROBES = {  # operation -> the scope it needs
    "{ members(first: 1) { edges { cursor } } }": "tenant:read",
    "{ orders(first: 1) { edges { cursor } } }": "orders:read",
    "{ locations(first: 1) { edges { cursor } } }": "inventory:read",
    "{ materials(first: 1) { edges { cursor } } }": "catalog:read",
    "{ apiKeys(first: 1) { edges { cursor } } }": "tenant:admin",
    'mutation {{ holdOrder(input: {{id: "{}", reason: "x"}}) {{ userErrors {{ code }} }} }}'.format(
        _gid("Order:999999.1")
    ): "orders:write",
    'mutation {{ updateMaterial(input: {{id: "{}", name: "x"}}) {{ userErrors {{ code }} }} }}'.format(
        _gid("Material:999999.1")
    ): "catalog:write",
    'mutation {{ adjustStock(input: {{locationId: "{}", materialId: "{}", delta: 1, reason: "x"}}) '
    "{{ userErrors {{ code }} }} }}".format(
        _gid("Location:999999.1"), _gid("Material:999999.1")
    ): "inventory:write",
    'mutation {{ revokeApiKey(input: {{id: "{}"}}) {{ userErrors {{ code }} }} }}'.format(
        _gid("ApiKey:999999999")
    ): "tenant:admin",
}
READ = {"tenant:read", "orders:read", "inventory:read", "catalog:read", "finance:read"}
EXPECTED = {  # DESIGN.md, "Members and roles"
    "admin": READ | {"orders:write", "inventory:write", "catalog:write", "finance:write", "tenant:admin"},
    "operator": {"tenant:read", "orders:read", "orders:write", "inventory:read", "inventory:write",
                 "catalog:read", "catalog:write"},
    "finance": {"tenant:read", "orders:read", "finance:read", "finance:write"},
    "viewer": READ,
}  # fmt: skip


@pytest.mark.parametrize("role", sorted(EXPECTED))
async def test_an_invited_member_has_exactly_the_scopes_of_its_role(gql, tenant_a, role):
    token, _ = await join(gql, tenant_a.token, role)
    viewer = (await gql(VIEWER, token=token))["viewer"]
    assert viewer["role"] == role and set(viewer["scopes"]) == EXPECTED[role]
    for query, scope in PROBES.items():
        body = (await gql.raw(query, token=token)).json()
        if scope in EXPECTED[role]:
            assert not body.get("errors"), (role, query, body)
        else:
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (role, query, body)


async def test_members_of_one_tenant_cannot_reach_another(gql, tenant_a, tenant_b):
    admin_b, _ = await join(gql, tenant_b.token, "admin")
    token_a = (
        await gql(
            "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { token invitation { id } } }",
            {"i": {"email": "only-a@example.com", "role": "viewer"}},
            token=tenant_a.token,
        )
    )["inviteMember"]
    members_a = (await gql(MEMBERS, token=tenant_a.token))["members"]["edges"]
    owner_a = members_a[0]["node"]["id"]
    # B's admin sees only B's members and invitations, and A's ids are simply not found.
    emails_b = [e["node"]["user"]["email"] for e in (await gql(MEMBERS, token=admin_b))["members"]["edges"]]
    assert tenant_a.email not in emails_b
    assert (await gql(INVITATIONS, token=admin_b))["invitations"]["edges"] == []
    change = await gql(CHANGE_ROLE, {"input": {"id": owner_a, "role": "viewer"}}, token=admin_b)
    assert codes(change["changeMemberRole"]) == ["NOT_FOUND"]
    assert codes((await gql(REMOVE, {"input": {"id": owner_a}}, token=admin_b))["removeMember"]) == [
        "NOT_FOUND"
    ]
    revoke = await gql(REVOKE_INVITATION, {"input": {"id": token_a["invitation"]["id"]}}, token=admin_b)
    assert codes(revoke["revokeInvitation"]) == ["NOT_FOUND"]
    nodes = await gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [owner_a, token_a["invitation"]["id"]]},
        token=admin_b,
    )
    assert nodes["nodes"] == [None, None]
    # An invitation into A gives access to A only.
    accepted = (
        await gql(
            "mutation($i: AcceptInvitationInput!) {"
            " acceptInvitation(input: $i) { accessToken tenant { slug } } }",
            {"i": {"token": token_a["token"], "password": "a long enough password"}},
        )
    )["acceptInvitation"]
    assert accepted["tenant"]["slug"] == tenant_a.slug
    assert (await gql(VIEWER, token=accepted["accessToken"]))["viewer"]["tenant"]["slug"] == tenant_a.slug
    login = await gql(
        "mutation($i: LoginInput!) { login(input: $i) { userErrors { code } } }",
        {"i": {"email": "only-a@example.com", "password": "a long enough password", "tenant": tenant_b.slug}},
    )
    assert codes(login["login"]) == ["NO_TENANT"]
    # And A's owner still stands.
    assert (
        next(e["node"]["role"] for e in (await gql(MEMBERS, token=tenant_a.token))["members"]["edges"])
        == "owner"
    )
