"""Invariant 1 for the catalog and channels: tenant B never reads or changes tenant A's materials,
products, channels or listings, by id, by list, by filter, by CSV or by export.

Both tenants create their own rows first, so A's row ids also exist in B's schema: a leak through a
bare row id would show up here.
"""

from __future__ import annotations

import pytest

from tests.catalog_ops import (
    CHANNELS,
    CREATE_LISTING,
    CREATE_PRODUCT,
    DELETE_LISTING,
    LISTINGS,
    MATERIALS,
    NODE,
    NODES,
    PRODUCTS,
    UPDATE_CHANNEL,
    UPDATE_MATERIAL,
    UPDATE_PRODUCT,
    create_channel,
    create_listing,
    create_material,
    create_product,
    errors,
    import_csv,
)

EXPORT = "{ exportMaterialsCsv exportProductsCsv exportChannelListingsCsv }"


async def _catalog(gql, tenant, prefix: str) -> dict[str, dict]:
    material = await create_material(gql, tenant, f"{prefix}-MAT")
    product = await create_product(gql, tenant, f"{prefix}-P", "single", [(material["id"], 1)])
    channel = await create_channel(gql, tenant, f"{prefix}-CH")
    listing = await create_listing(gql, tenant, channel["id"], product["id"], f"{prefix}-ITEM")
    return {"Material": material, "Product": product, "Channel": channel, "ChannelListing": listing}


@pytest.fixture
async def both(gql, tenant_a, tenant_b):
    return await _catalog(gql, tenant_a, "A"), await _catalog(gql, tenant_b, "B")


@pytest.mark.parametrize("credential", ["token", "api_key"])
async def test_b_cannot_read_a_catalog_by_id(gql, tenant_a, tenant_b, both, credential):
    a, b = both
    auth = {credential: getattr(tenant_b, credential)}
    for type_name, obj in a.items():
        assert (await gql(NODE, {"id": obj["id"]}, token=tenant_a.token))["node"]["__typename"] == type_name
        assert (await gql(NODE, {"id": obj["id"]}, **auth))["node"] is None
    assert (await gql(NODES, {"ids": [o["id"] for o in a.values()]}, **auth))["nodes"] == [None] * 4
    assert a["Material"]["id"] != b["Material"]["id"]  # same row id, different tenant in the global id


async def test_b_lists_filters_and_exports_only_its_own(gql, tenant_a, tenant_b, both):
    a, b = both
    data = await gql(
        "{ materials { edges { node { id } } } products { edges { node { id } } }"
        " channels { edges { node { id } } } channelListings { edges { node { id } } } }",
        token=tenant_b.token,
    )
    seen = {key: [e["node"]["id"] for e in conn["edges"]] for key, conn in data.items()}
    assert seen == {
        "materials": [b["Material"]["id"]],
        "products": [b["Product"]["id"]],
        "channels": [b["Channel"]["id"]],
        "channelListings": [b["ChannelListing"]["id"]],
    }
    for query, flt in (
        (MATERIALS, {"search": "A-"}),
        (PRODUCTS, {"search": "A-"}),
        (CHANNELS, {"search": "A-"}),
        (LISTINGS, {"channelId": a["Channel"]["id"]}),
        (LISTINGS, {"productId": a["Product"]["id"]}),
    ):
        result = await gql(query, {"filter": flt}, token=tenant_b.token)
        assert next(iter(result.values()))["edges"] == [], flt
    exported = await gql(EXPORT, token=tenant_b.token)
    assert all("A-" not in text and "B-" in text for text in exported.values())


async def test_b_cannot_change_a_catalog(gql, tenant_a, tenant_b, both):
    a, b = both
    tok = tenant_b.token

    res = await gql(UPDATE_MATERIAL, {"input": {"id": a["Material"]["id"], "name": "hacked"}}, token=tok)
    assert errors(res["updateMaterial"]) == [("NOT_FOUND", ["id"])]
    res = await gql(UPDATE_PRODUCT, {"input": {"id": a["Product"]["id"], "name": "hacked"}}, token=tok)
    assert errors(res["updateProduct"]) == [("NOT_FOUND", ["id"])]
    res = await gql(UPDATE_CHANNEL, {"input": {"id": a["Channel"]["id"], "name": "hacked"}}, token=tok)
    assert errors(res["updateChannel"]) == [("NOT_FOUND", ["id"])]
    res = await gql(DELETE_LISTING, {"input": {"id": a["ChannelListing"]["id"]}}, token=tok)
    assert errors(res["deleteChannelListing"]) == [("NOT_FOUND", ["id"])]
    # A's ids inside B's inputs are not found either.
    res = await gql(
        UPDATE_PRODUCT,
        {
            "input": {
                "id": b["Product"]["id"],
                "components": [{"materialId": a["Material"]["id"], "quantity": 1}],
            }
        },
        token=tok,
    )
    assert errors(res["updateProduct"]) == [("NOT_FOUND", ["components", "0", "materialId"])]
    comps = [{"materialId": a["Material"]["id"], "quantity": 1}]
    res = await gql(
        CREATE_PRODUCT,
        {"input": {"code": "X", "name": "x", "kind": "single", "components": comps}},
        token=tok,
    )
    assert errors(res["createProduct"]) == [("NOT_FOUND", ["components", "0", "materialId"])]
    for field, gid in (("channelId", a["Channel"]["id"]), ("productId", a["Product"]["id"])):
        ids = {"channelId": b["Channel"]["id"], "productId": b["Product"]["id"], field: gid}
        res = await gql(CREATE_LISTING, {"input": {**ids, "externalItemId": "X"}}, token=tok)
        assert errors(res["createChannelListing"]) == [("NOT_FOUND", [field])]
    # CSV imports see only B's codes: A's materials, products and channels are unknown there.
    res = await import_csv(
        gql, tenant_b, "importProductsCsv", "code,name,kind,components\nX,x,single,A-MAT*1\n"
    )
    assert [e["code"] for e in res["errors"]] == ["NOT_FOUND"]
    res = await import_csv(
        gql, tenant_b, "importChannelListingsCsv", "channel,external_item_id,product\nA-CH,1,B-P\n"
    )
    assert [e["code"] for e in res["errors"]] == ["NOT_FOUND"]
    res = await import_csv(gql, tenant_b, "importMaterialsCsv", "code,name\nA-MAT,B's own\n")
    assert (res["created"], res["updated"]) == (1, 0)  # a new material in B, not an update of A's

    # A's rows are untouched, and B's own rows with the same row ids too.
    for tenant, prefix, objs in ((tenant_a, "A", a), (tenant_b, "B", b)):
        for type_name in ("Material", "Product", "Channel"):
            node = await gql(
                "query($id: ID!) { node(id: $id) { ... on Material { name } ... on Product { name }"
                " ... on Channel { name } } }",
                {"id": objs[type_name]["id"]},
                token=tenant.token,
            )
            assert node["node"]["name"].startswith(prefix), (type_name, node)
        listing = await gql(NODE, {"id": objs["ChannelListing"]["id"]}, token=tenant.token)
        assert listing["node"] is not None
