"""What the GraphQL door tells a stranger, and the codes of its refusals.

In production an unauthenticated caller gets no introspection and no "Did you mean" suggestions;
a signed-in back office keeps introspection. Every pre-execution error has an ``extensions.code``,
and a document with several operations must say which one to run."""

from __future__ import annotations

import secrets

import pytest

from app.api.schema import MAX_ALIASES, MAX_TOKENS

INTROSPECTIONS = [
    "{ __schema { queryType { name } } }",
    '{ __type(name: "Order") { fields { name } } }',
    "query { viewer { __typename } __schema { types { name } } }",
]


@pytest.fixture
def prod(settings_env):
    settings_env(ENV="prod", SECRET_KEY=secrets.token_urlsafe(48))


@pytest.mark.parametrize("document", INTROSPECTIONS)
async def test_prod_refuses_introspection_to_unauthenticated_callers(gql, prod, document):
    r = await gql.raw(document)
    assert r.status_code == 400, r.text
    codes = {e["extensions"]["code"] for e in r.json()["errors"]}
    assert codes == {"INTROSPECTION_DISABLED"}
    assert "data" not in r.json()


async def test_prod_keeps_introspection_for_signed_in_back_offices(gql, tenant_a, prod):
    data = await gql("{ __schema { queryType { name } } }", api_key=tenant_a.api_key)
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_outside_prod_introspection_stays_open_for_the_ide(gql):
    assert (await gql("{ __schema { queryType { name } } }"))["__schema"]["queryType"]["name"] == "Query"


async def test_prod_suggests_no_field_names_to_strangers(gql, tenant_a, prod):
    stranger = (await gql.raw("{ viewr { role } }")).json()["errors"]
    assert stranger and all("Did you mean" not in e["message"] for e in stranger), stranger
    assert stranger[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    known = (await gql.raw("{ viewr { role } }", api_key=tenant_a.api_key)).json()["errors"]
    assert "Did you mean 'viewer'" in known[0]["message"]


async def test_several_operations_without_an_operation_name_are_an_error(gql, tenant_a):
    document = "query A { viewer { role } } query B { viewer { tenant { slug } } }"
    r = await gql.raw(document, token=tenant_a.token)
    assert r.status_code == 400
    assert [e["extensions"]["code"] for e in r.json()["errors"]] == ["OPERATION_NAME_REQUIRED"]
    r = await gql.http.post(
        "/graphql",
        json={"query": document, "operationName": "B"},
        headers={"authorization": f"Bearer {tenant_a.token}"},
    )
    assert r.json()["data"] == {"viewer": {"tenant": {"slug": tenant_a.slug}}}


@pytest.mark.parametrize(
    "document, variables, code",
    [
        ("{ viewer { role }", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { " + "role " * MAX_TOKENS + "} }", {}, "TOO_MANY_TOKENS"),
        (
            "{ " + " ".join(f"a{i}: viewer {{ role }}" for i in range(MAX_ALIASES + 1)) + " }",
            {},
            "TOO_MANY_ALIASES",
        ),
        ("{ viewer { nope } }", {}, "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int) { apiKeys(first: $n) { edges { cursor } } }", {"n": "ten"}, "BAD_USER_INPUT"),
        ("query($n: Int!) { apiKeys(first: $n) { edges { cursor } } }", {}, "BAD_USER_INPUT"),
    ],
)
async def test_every_refusal_before_execution_has_a_code(gql, tenant_a, document, variables, code):
    r = await gql.raw(document, variables, token=tenant_a.token)
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code] * len(errors), errors
