"""Invariant 1: tenant B's credentials never read or change tenant A's objects, by any id.

Another tenant's object simply does not exist for you: NOT_FOUND (or null), never FORBIDDEN.
"""

from __future__ import annotations

import base64

import pytest

REVOKE = """mutation($input: RevokeApiKeyInput!) {
  revokeApiKey(input: $input) { apiKey { id } userErrors { field code } } }"""
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


async def _a_objects(gql, tenant_a, run_jobs) -> dict[str, str]:
    """Global ids of one object of every node type, all belonging to tenant A."""
    await run_jobs()  # so A has an activity event
    data = await gql(
        "{ viewer { tenant { id } } apiKeys { edges { node { id } } } members { edges { node { id } } }"
        " activity { edges { node { id } } } }",
        token=tenant_a.token,
    )
    ids = {
        "Tenant": data["viewer"]["tenant"]["id"],
        "ApiKey": data["apiKeys"]["edges"][0]["node"]["id"],
        "Member": data["members"]["edges"][0]["node"]["id"],
        "ActivityEvent": data["activity"]["edges"][0]["node"]["id"],
    }
    # Sanity: A itself resolves every one of them.
    for type_name, gid in ids.items():
        node = (await gql(NODE, {"id": gid}, token=tenant_a.token))["node"]
        assert node == {"__typename": type_name, "id": gid}
    return ids


@pytest.mark.parametrize("credential", ["token", "api_key"])
async def test_b_cannot_read_a_objects_by_id(gql, tenant_a, tenant_b, run_jobs, credential):
    ids = await _a_objects(gql, tenant_a, run_jobs)
    auth = {credential: getattr(tenant_b, credential)}
    for gid in ids.values():
        assert (await gql(NODE, {"id": gid}, **auth))["node"] is None
    assert (await gql(NODES, {"ids": list(ids.values())}, **auth))["nodes"] == [None] * len(ids)


async def test_b_lists_only_its_own_objects(gql, tenant_a, tenant_b, run_jobs):
    a_ids = set((await _a_objects(gql, tenant_a, run_jobs)).values())
    data = await gql(
        "{ viewer { tenant { id slug } } apiKeys { edges { node { id } } }"
        " members { edges { node { id user { email } } } } activity { edges { node { id data } } } }",
        token=tenant_b.token,
    )
    assert data["viewer"]["tenant"]["slug"] == tenant_b.slug
    b_ids = {data["viewer"]["tenant"]["id"]}
    for conn in ("apiKeys", "members", "activity"):
        b_ids |= {e["node"]["id"] for e in data[conn]["edges"]}
    assert not (a_ids & b_ids)
    assert [e["node"]["user"]["email"] for e in data["members"]["edges"]] == [tenant_b.email]
    assert all(e["node"]["data"]["slug"] == tenant_b.slug for e in data["activity"]["edges"])


async def test_b_cannot_revoke_a_key_and_a_key_keeps_working(gql, tenant_a, tenant_b, run_jobs):
    ids = await _a_objects(gql, tenant_a, run_jobs)
    res = (await gql(REVOKE, {"input": {"id": ids["ApiKey"]}}, token=tenant_b.token))["revokeApiKey"]
    assert res["apiKey"] is None
    assert [(e["code"], e["field"]) for e in res["userErrors"]] == [("NOT_FOUND", ["id"])]
    assert (await gql("{ viewer { tenant { slug } } }", api_key=tenant_a.api_key))["viewer"]["tenant"][
        "slug"
    ] == tenant_a.slug


async def test_a_tenant_id_cannot_be_smuggled_in_a_token_or_input(gql, tenant_a, tenant_b):
    # Re-signing B's claims with tid=A is impossible without the key; a forged unsigned token is refused.
    header, payload, _sig = tenant_b.token.split(".")
    forged = header + "." + payload + "." + base64.urlsafe_b64encode(b"x" * 32).decode().rstrip("=")
    assert (await gql.raw("{ viewer { role } }", token=forged)).status_code == 401
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=") + "." + payload + "."
    assert (await gql.raw("{ viewer { role } }", token=none_alg)).status_code == 401


async def test_ids_of_the_wrong_type_or_garbage_are_not_found(gql, tenant_a):
    for gid in ("garbage", base64.b64encode(b"ApiKey:abc").decode(), base64.b64encode(b"Nope:1").decode()):
        r = await gql.raw(NODE, {"id": gid}, token=tenant_a.token)
        body = r.json()
        assert body.get("data", {}) in ({"node": None}, None, {}) or body["errors"]
        assert "Internal server error" not in r.text
    res = (await gql(REVOKE, {"input": {"id": "garbage"}}, token=tenant_a.token))["revokeApiKey"]
    assert [e["code"] for e in res["userErrors"]] == ["NOT_FOUND"]
