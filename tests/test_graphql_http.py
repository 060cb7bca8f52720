"""GraphQL over HTTP: media types, status codes, limits, malformed input, schema drift."""

from __future__ import annotations

import subprocess
import sys

import strawberry

from app.config import PROJECT_ROOT

VIEWER = "{ viewer { role } }"


@strawberry.type
class _Folder:
    name: str = "f"

    @strawberry.field
    def child(self) -> _Folder:
        return _Folder()


@strawberry.type
class _Q:
    @strawberry.field
    def root(self) -> _Folder:
        return _Folder()


async def test_graphql_response_json_media_type(client, tenant_a):
    r = await client.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"accept": "application/graphql-response+json", "authorization": f"Bearer {tenant_a.token}"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/graphql-response+json")
    assert r.json() == {"data": {"viewer": {"role": "owner"}}}


async def test_legacy_json_clients_get_200_even_for_invalid_documents(client):
    r = await client.post("/graphql", json={"query": "{ nope }"}, headers={"accept": "application/json"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "Cannot query field 'nope'" in r.json()["errors"][0]["message"]


async def test_validation_and_syntax_errors_are_400_without_data(gql):
    for query in ("{ nope }", "{ viewer { ", "query { viewer { role } } query { viewer { role } }"):
        r = await gql.raw(query)
        assert r.status_code == 400, (query, r.text)
        body = r.json()
        assert "data" not in body and body["errors"]


async def test_malformed_json_body_is_a_json_400(client):
    r = await client.post(
        "/graphql",
        content=b"{not json",
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["message"]


async def test_unacceptable_accept_header_is_406(client):
    r = await client.post("/graphql", json={"query": VIEWER}, headers={"accept": "text/csv"})
    assert r.status_code == 406


async def test_mutation_over_get_is_refused(client):
    r = await client.get(
        "/graphql",
        params={"query": 'mutation { logout(input: {refreshToken: "x"}) { ok } }'},
        headers={"accept": "application/json"},
    )
    assert r.status_code in (400, 405)


async def test_alias_and_token_limits(gql, tenant_a):
    from app.api.schema import MAX_ALIASES, MAX_TOKENS

    aliases = "{ " + " ".join(f"a{i}: viewer {{ role }}" for i in range(MAX_ALIASES + 1)) + " }"
    r = await gql.raw(aliases, token=tenant_a.token)
    assert r.status_code == 400 and "aliases" in r.json()["errors"][0]["message"]
    tokens = "{ viewer { " + "role " * MAX_TOKENS + "} }"
    r = await gql.raw(tokens, token=tenant_a.token)
    assert r.status_code == 400 and "token" in r.json()["errors"][0]["message"].lower()


def test_depth_limit_of_our_extensions_rejects_deep_documents():
    """Today's schema has no recursive path, so the configured extensions are run on a recursive
    type: the same instances our schema uses, not a re-declaration."""
    from app.api.schema import MAX_DEPTH
    from app.api.schema import schema as ours

    probe = strawberry.Schema(query=_Q, extensions=ours.extensions)

    def deep(n: int) -> str:
        return "{ root { " + "child { " * (n - 1) + "name" + " }" * (n - 1) + " } }"

    assert probe.execute_sync(deep(MAX_DEPTH)).errors is None
    errors = probe.execute_sync(deep(MAX_DEPTH + 1)).errors
    assert errors and "exceeds maximum operation depth" in errors[0].message
    assert errors[0].extensions == {"code": "QUERY_TOO_DEEP"}


async def test_page_size_is_capped_with_a_clear_error(gql, tenant_a):
    r = await gql.raw("{ apiKeys(first: 1000) { edges { cursor } } }", token=tenant_a.token)
    error = r.json()["errors"][0]
    assert error["extensions"]["code"] == "INVALID_PAGE_SIZE"


async def test_cursor_pagination_walks_every_item_once(gql, tenant_a):
    from tests.conftest import CREATE_KEY

    for i in range(5):
        await gql(CREATE_KEY, {"input": {"name": f"k{i}", "scopes": ["orders:read"]}}, token=tenant_a.token)
    seen, after = [], None
    while True:
        page = (
            await gql(
                "query($after: String) { apiKeys(first: 2, after: $after) { edges { cursor node { name } }"
                " pageInfo { hasNextPage endCursor } } }",
                {"after": after},
                token=tenant_a.token,
            )
        )["apiKeys"]
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(["back office", "k0", "k1", "k2", "k3", "k4"])
    bad = await gql.raw('{ apiKeys(after: "!!") { edges { cursor } } }', token=tenant_a.token)
    assert bad.json()["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_graphiql_is_not_served_outside_dev(client):
    r = await client.get("/graphql", headers={"accept": "text/html"})
    assert r.status_code in (400, 404)
    assert "graphiql" not in r.text.lower()


def test_committed_schema_matches_the_code():
    """graphql/schema.graphql is the contract; regenerate it with the command in the README."""
    out = subprocess.run(
        [sys.executable, "-m", "strawberry", "export-schema", "app.api.schema:schema"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=True,
    ).stdout
    committed = (PROJECT_ROOT / "graphql" / "schema.graphql").read_text()
    assert out.strip() == committed.strip(), (
        "schema drift: run `strawberry export-schema app.api.schema:schema --output graphql/schema.graphql`"
    )
    assert not (PROJECT_ROOT / "graphql" / "__init__.py").exists()
