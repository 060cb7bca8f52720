"""A scope guards its types wherever they are reached, not only at ``node(id:)``.

An API key with only ``orders:read`` used to read the order's channel (with its webhook URL), the
products and materials of its lines and its fulfilment orders' locations (address and coordinates)
by nesting. The schema walk checks that every Node type names its scope and that every field leading
to a guarded type is guarded; the queries check the refusal through HTTP for each scope."""

from __future__ import annotations

import pytest

from app.api.schema import schema
from app.api.scopes import guarded_fields, type_scope
from graphql import GraphQLObjectType, get_named_type
from tenants.auth import ALL_SCOPES
from tests.conftest import CREATE_KEY
from tests.factories import tenant_ref
from tests.routing_support import drain, gid, ingest, make_shop, warehouse

PUBLIC_NODE_TYPES = {"Tenant"}  # the caller's own tenant: any credential may read it (viewer.tenant)


def test_every_node_type_names_the_scope_that_reads_it():
    missing = [
        name
        for name, named in schema._schema.type_map.items()
        if isinstance(named, GraphQLObjectType)
        and any(i.name == "Node" for i in named.interfaces)
        and name not in PUBLIC_NODE_TYPES
        and type_scope(named) is None
    ]
    assert missing == []


def test_every_field_that_leads_to_a_guarded_type_is_guarded():
    guarded = guarded_fields(schema._schema)
    unguarded = [
        f"{named.name}.{name}"
        for named in schema._schema.type_map.values()
        if isinstance(named, GraphQLObjectType) and not named.name.startswith("__")
        for name, field in named.fields.items()
        if type_scope(get_named_type(field.type)) and f"{named.name}.{name}" not in guarded
    ]
    assert unguarded == []
    assert {"Order.channel", "OrderLineType.product", "FulfillmentOrder.location"} <= set(guarded)


async def _key(gql, tenant, scopes) -> str:
    data = await gql(CREATE_KEY, {"input": {"name": "narrow", "scopes": sorted(scopes)}}, token=tenant.token)
    return data["createApiKey"]["key"]


NESTED = """
query($id: ID!) {
  order(id: $id) {
    number
    channel { code webhookUrl }
    lines { title product { code } materials { material { code } } }
  }
  fulfillmentOrders(orderId: $id) { status location { address lat lng } lines { material { code } } }
}"""


@pytest.fixture
async def routed(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    shop = await make_shop(ref, {await warehouse(ref, "Chengdu", (30.66, 104.07)): 5})
    order_id = await ingest(shop, "SCOPE-1")
    await drain(run_jobs)
    return gid("Order", ref, order_id)


def _refused(body: dict) -> set[tuple[str, str]]:
    return {
        (".".join(str(p) for p in e["path"] if not isinstance(p, int)), e["extensions"]["code"])
        for e in body["errors"]
    }


async def test_orders_read_alone_does_not_reach_channels_catalog_or_locations(gql, tenant_a, routed):
    key = await _key(gql, tenant_a, {"orders:read"})
    body = (await gql.raw(NESTED, {"id": routed}, api_key=key)).json()
    order = body["data"]["order"]
    assert order["number"] and order["channel"] is None
    assert all(line["product"] is None for line in order["lines"])
    assert all(m["material"] is None for line in order["lines"] for m in line["materials"])
    fos = body["data"]["fulfillmentOrders"]
    assert fos and all(fo["location"] is None and fo["status"] for fo in fos)
    assert _refused(body) == {
        ("order.channel", "FORBIDDEN"),
        ("order.lines.product", "FORBIDDEN"),
        ("order.lines.materials.material", "FORBIDDEN"),
        ("fulfillmentOrders.location", "FORBIDDEN"),
        ("fulfillmentOrders.lines.material", "FORBIDDEN"),
    }
    assert "webhook" not in str(body["data"]).lower() and "address" not in str(body["data"])
    # With the scopes, the same document reads everything: the refusals above are the scopes' doing.
    full = (await gql.raw(NESTED, {"id": routed}, api_key=tenant_a.api_key)).json()
    assert "errors" not in full and full["data"]["order"]["channel"]["webhookUrl"]
    assert full["data"]["fulfillmentOrders"][0]["location"]["address"] is not None


@pytest.mark.parametrize(
    "scope, document, path",
    [
        ("tenant:read", "{ members { edges { node { role } } } }", "members"),
        ("tenant:admin", "{ apiKeys { edges { node { name } } } }", "apiKeys"),
        ("inventory:read", "{ locations { edges { node { code } } } }", "locations"),
        ("catalog:read", "{ materials { edges { node { code } } } }", "materials"),
        ("orders:read", "{ orders { edges { node { number } } } }", "orders"),
    ],
)
async def test_each_scope_is_needed_for_its_types(gql, tenant_a, scope, document, path):
    key = await _key(gql, tenant_a, set(ALL_SCOPES) - {scope})
    body = (await gql.raw(document, api_key=key)).json()
    assert body.get("data") is None or body["data"].get(path) is None, body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert (await gql.raw(document, api_key=tenant_a.api_key)).json().get("errors") is None
