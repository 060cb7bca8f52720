"""Hostile input on /graphql: bodies that are not a GraphQL request, bodies too big or too deep, and global
ids that name nothing of ours. Each gets a clear 4xx or a plain "not found", never a 500 or an internal
error, also for anonymous callers."""

from __future__ import annotations

import base64

import pytest

from app.api.relay import MAX_NODES
from app.api.view import MAX_ANONYMOUS_BYTES, MAX_JSON_DEPTH, MAX_MULTIPART_BYTES, MAX_QUERY_STRING_BYTES

JSON_HEADERS = {"content-type": "application/json", "accept": "application/graphql-response+json"}
TYPENAME = b'{"query":"{ __typename }"}'
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


def gid(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def assert_bad_request(response, words: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST", error
    assert words in error["message"], error


def padded(size: int) -> bytes:
    """A valid request body of exactly ``size`` bytes (a long comment in the query)."""
    head, tail = b'{"query":"{ __typename } #', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def chunks(body: bytes, size: int = 16 * 1024):
    """The body as a stream: httpx sends it chunked, without Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"null", "null"), (b"42", "a number"), (b'"{ __typename }"', "a string"), (b"true", "a boolean")],
)
async def test_a_json_body_that_is_not_an_object_is_a_400(client, body, kind):
    response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert_bad_request(response, f"expected a JSON object, got {kind}")


async def test_a_batch_is_refused_as_batching_is_off(client):
    response = await client.post("/graphql", content=b"[" + TYPENAME + b"]", headers=JSON_HEADERS)
    assert_bad_request(response, "batching is not supported")


async def test_invalid_utf8_is_a_400(client):
    response = await client.post("/graphql", content=b'{"query":"{ __typename \xff }"}', headers=JSON_HEADERS)
    assert_bad_request(response, "not valid UTF-8")


async def test_json_nested_too_deep_is_a_400(client, tenant_a):
    headers = {**JSON_HEADERS, "authorization": f"Bearer {tenant_a.token}"}  # 100,000 levels: 200 KB
    for depth in (MAX_JSON_DEPTH + 1, 5000, 100_000):
        # {"query": …, "variables": {"v": [[…]]}}: the variables object is level 2, "v" level 3.
        nested = b"[" * (depth - 2) + b"]" * (depth - 2)
        body = b'{"query":"{ __typename }","variables":{"v":' + nested + b"}}"
        response = await client.post("/graphql", content=body, headers=headers)
        assert_bad_request(response, f"nested deeper than {MAX_JSON_DEPTH} levels")


async def test_json_nested_up_to_the_limit_is_fine(client):
    nested = b"[" * (MAX_JSON_DEPTH - 2) + b"]" * (MAX_JSON_DEPTH - 2)
    body = b'{"query":"{ __typename }","variables":{"v":' + nested + b"}}"
    response = await client.post("/graphql", content=body, headers=JSON_HEADERS)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_anonymous_bodies_are_capped_before_reading(client, chunked):
    at_limit = await client.post("/graphql", content=padded(MAX_ANONYMOUS_BYTES), headers=JSON_HEADERS)
    assert at_limit.status_code == 200, at_limit.text
    body = padded(MAX_ANONYMOUS_BYTES + 1)
    response = await client.post("/graphql", content=chunks(body) if chunked else body, headers=JSON_HEADERS)
    assert response.status_code == 413, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "TOO_LARGE"
    assert f"{MAX_ANONYMOUS_BYTES} bytes for anonymous requests" in error["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_authenticated_bodies_get_the_upload_bound(client, tenant_a, chunked):
    headers = {**JSON_HEADERS, "authorization": f"Bearer {tenant_a.token}"}
    body = padded(4 * MAX_ANONYMOUS_BYTES)
    response = await client.post("/graphql", content=chunks(body) if chunked else body, headers=headers)
    assert response.status_code == 200, response.text
    body = padded(MAX_MULTIPART_BYTES + 1)
    response = await client.post("/graphql", content=chunks(body) if chunked else body, headers=headers)
    assert response.status_code == 413, response.text
    assert f"{MAX_MULTIPART_BYTES} bytes" in response.json()["errors"][0]["message"]


async def test_a_bad_credential_does_not_buy_the_larger_bound(client):
    """Credentials are checked before the body is read: a forged one is refused, its body never read."""
    headers = {**JSON_HEADERS, "authorization": "Bearer forged"}
    response = await client.post("/graphql", content=chunks(padded(4 * MAX_ANONYMOUS_BYTES)), headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_get_query_strings_are_bounded(client):
    accept = {"accept": "application/json"}
    ok = await client.get("/graphql", params={"query": "{ __typename }"}, headers=accept)
    assert ok.json() == {"data": {"__typename": "Query"}}
    query = "{ __typename } #" + "x" * MAX_QUERY_STRING_BYTES
    response = await client.get("/graphql", params={"query": query}, headers=accept)
    assert response.status_code == 414, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "TOO_LARGE" and "query string" in error["message"]


# --- global ids ------------------------------------------------------------------------------------------


def schema_type_names() -> list[str]:
    from app.api.schema import schema

    return sorted(schema._schema.type_map)


def hostile_ids(tenant_number: str) -> list[str]:
    """Ids of every type in the schema (with plain, tenant-scoped and malformed keys), and bad shapes."""
    big = "9" * 40
    keys = ["1", f"{tenant_number}.1", "", "x", "-1", " 1", "1_0", "²", big, f"{tenant_number}.{big}"]
    ids = [gid(f"{name}:{key}") for name in schema_type_names() for key in keys]
    return [*ids, "", "!!", "=", gid("Order"), gid(":1"), gid("Order:1:2"), "x" * 10_000, "été"]


async def tenant_number(gql, tenant) -> str:
    return base64.b64decode(tenant.tenant_id).decode().partition(":")[2]


def assert_no_errors(response) -> dict:
    body = response.json()
    assert response.status_code == 200, body
    assert not body.get("errors"), body["errors"]
    return body["data"]


def aliased(field: str, count: int) -> str:
    """One document asking ``field(id:)`` ``count`` times (within the alias limit), ids as variables."""
    variables = ", ".join(f"$i{n}: ID!" for n in range(count))
    fields = " ".join(f"n{n}: {field}(id: $i{n}) {{ __typename }}" for n in range(count))
    return f"query({variables}) {{ {fields} }}"


async def test_every_type_name_and_shape_is_simply_not_found(gql, tenant_a):
    """No global id, whatever type it names (``Node``, ``Query``, ``OrderAmounts``, a scalar, an enum,
    an input), gives an error in ``node``, ``nodes`` or ``order``: an id naming no node of the caller's
    tenant is null."""
    assert {"Node", "Query", "OrderAmounts", "Order", "String"} <= set(schema_type_names())
    ids = hostile_ids(await tenant_number(gql, tenant_a))
    per_document = 25
    for credential in ({}, {"api_key": tenant_a.api_key}):
        for start in range(0, len(ids), MAX_NODES):
            batch = ids[start : start + MAX_NODES]
            data = assert_no_errors(await gql.raw(NODES, {"ids": batch}, **credential))
            assert len(data["nodes"]) == len(batch)
            found = [(i, n) for i, n in zip(batch, data["nodes"], strict=True) if n is not None]
            # Row 1 of a type may exist in the caller's tenant; nothing is found for anonymous callers.
            assert not found or credential, found
            for node_id, node in found:
                assert node["__typename"] == base64.b64decode(node_id).decode().partition(":")[0]
        for start in range(0, len(ids), per_document):
            batch = ids[start : start + per_document]
            variables = {f"i{n}": node_id for n, node_id in enumerate(batch)}
            data = assert_no_errors(await gql.raw(aliased("node", len(batch)), variables, **credential))
            assert credential or set(data.values()) == {None}
    for start in range(0, len(ids), per_document):
        batch = ids[start : start + per_document]
        variables = {f"i{n}": node_id for n, node_id in enumerate(batch)}
        response = await gql.raw(aliased("order", len(batch)), variables, api_key=tenant_a.api_key)
        assert set(assert_no_errors(response).values()) == {None}


async def test_a_real_node_still_resolves_next_to_garbage(gql, tenant_a):
    own = {"id": tenant_a.tenant_id, "__typename": "Tenant"}
    data = await gql(NODES, {"ids": ["!!", tenant_a.tenant_id, gid("Node:1")]}, api_key=tenant_a.api_key)
    assert data["nodes"] == [None, own, None]
    assert (await gql(NODE, {"id": tenant_a.tenant_id}, api_key=tenant_a.api_key))["node"] == own


async def test_nodes_takes_at_most_max_nodes_ids(gql, tenant_a):
    assert_no_errors(await gql.raw(NODES, {"ids": ["!!"] * MAX_NODES}, api_key=tenant_a.api_key))
    response = await gql.raw(NODES, {"ids": ["!!"] * (MAX_NODES + 1)}, api_key=tenant_a.api_key)
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": ["ids"]}
    assert f"at most {MAX_NODES} ids" in error["message"]
