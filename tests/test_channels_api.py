"""Channels and channel listings through GraphQL, and resolve_listing for order ingest."""

from __future__ import annotations

from app.catalog.listings import resolve_listing
from app.db import get_db
from tests.catalog_ops import (
    CHANNELS,
    CREATE_CHANNEL,
    CREATE_LISTING,
    DELETE_LISTING,
    LISTINGS,
    NODE,
    UPDATE_CHANNEL,
    codes,
    create_channel,
    create_listing,
    create_material,
    create_product,
    errors,
    row_id,
)
from tests.factories import tenant_ref


async def test_channel_create_update_list(gql, tenant_a):
    tmall = await create_channel(gql, tenant_a, "TMALL-FLAGSHIP", "tmall", isCore=True)
    assert (tmall["platform"], tmall["isCore"], tmall["active"]) == ("tmall", True, True)
    await create_channel(gql, tenant_a, "POS-SH", "pos", name="Shanghai store")
    await create_channel(gql, tenant_a, "WEB", "web")

    async def listed(**flt) -> list[str]:
        return codes((await gql(CHANNELS, {"filter": flt}, token=tenant_a.token))["channels"])

    assert await listed() == ["WEB", "POS-SH", "TMALL-FLAGSHIP"]
    assert await listed(platform="pos") == ["POS-SH"]
    assert await listed(search="shanghai") == ["POS-SH"]

    res = await gql(
        UPDATE_CHANNEL, {"input": {"id": tmall["id"], "active": False, "name": "Tmall"}}, token=tenant_a.token
    )
    assert res["updateChannel"]["userErrors"] == []
    assert (res["updateChannel"]["channel"]["name"], res["updateChannel"]["channel"]["active"]) == (
        "Tmall",
        False,
    )
    assert res["updateChannel"]["channel"]["isCore"] is True
    assert await listed(active=False) == ["TMALL-FLAGSHIP"]

    dup = await gql(
        CREATE_CHANNEL, {"input": {"code": "WEB", "name": "x", "platform": "web"}}, token=tenant_a.token
    )
    assert errors(dup["createChannel"]) == [("DUPLICATE_CODE", ["code"])]
    dup = await gql(UPDATE_CHANNEL, {"input": {"id": tmall["id"], "code": "WEB"}}, token=tenant_a.token)
    assert errors(dup["updateChannel"]) == [("DUPLICATE_CODE", ["code"])]
    bad = await gql(UPDATE_CHANNEL, {"input": {"id": tmall["id"], "platform": None}}, token=tenant_a.token)
    assert errors(bad["updateChannel"]) == [("INVALID_PLATFORM", ["platform"])]
    r = await gql.raw(
        CREATE_CHANNEL, {"input": {"code": "X", "name": "x", "platform": "myspace"}}, token=tenant_a.token
    )
    assert r.json()["errors"]  # not a Platform value: rejected by GraphQL validation


async def test_listings_create_filter_delete_and_resolve(gql, tenant_a):
    machine = await create_material(gql, tenant_a, "L-MACHINE")
    beans = await create_material(gql, tenant_a, "L-BEANS")
    mug = await create_material(gql, tenant_a, "L-MUG")
    kit = await create_product(gql, tenant_a, "L-KIT", "bundle", [(machine["id"], 1), (beans["id"], 3)])
    single = await create_product(gql, tenant_a, "L-MACHINE", "single", [(machine["id"], 1)])
    gift = await create_product(gql, tenant_a, "L-GIFT", "gift", [(mug["id"], 1)])
    tmall = await create_channel(gql, tenant_a, "TMALL")
    jd = await create_channel(gql, tenant_a, "JD", "jd")

    kit_sku = await create_listing(gql, tenant_a, tmall["id"], kit["id"], "1001", "2001")
    assert (kit_sku["channel"]["code"], kit_sku["product"]["code"], kit_sku["externalSkuId"]) == (
        "TMALL",
        "L-KIT",
        "2001",
    )
    plain = await create_listing(gql, tenant_a, tmall["id"], single["id"], "1002")
    await create_listing(gql, tenant_a, jd["id"], single["id"], "1002")  # same item id, other channel

    async def listing_error(**fields) -> list:
        base = {"channelId": tmall["id"], "productId": single["id"], "externalItemId": "1003"}
        data = await gql(CREATE_LISTING, {"input": {**base, **fields}}, token=tenant_a.token)
        assert data["createChannelListing"]["channelListing"] is None
        return errors(data["createChannelListing"])

    assert await listing_error(externalItemId="1001", externalSkuId="2001") == [
        ("DUPLICATE_LISTING", ["externalSkuId"])
    ]
    assert await listing_error(productId=gift["id"]) == [("NOT_SELLABLE", ["productId"])]
    assert await listing_error(externalItemId="  ") == [("INVALID_EXTERNAL_ITEM_ID", ["externalItemId"])]
    assert await listing_error(productId=machine["id"]) == [("NOT_FOUND", ["productId"])]  # a Material id
    assert await listing_error(channelId="garbage") == [("NOT_FOUND", ["channelId"])]

    async def listed(**flt) -> list[str]:
        data = await gql(LISTINGS, {"filter": flt}, token=tenant_a.token)
        return [
            (e["node"]["channel"]["code"], e["node"]["externalItemId"])
            for e in data["channelListings"]["edges"]
        ]

    assert await listed(channelId=tmall["id"]) == [("TMALL", "1002"), ("TMALL", "1001")]
    assert await listed(productId=single["id"]) == [("JD", "1002"), ("TMALL", "1002")]
    assert await listed(channelId=jd["id"], productId=kit["id"]) == []
    assert await listed(channelId="garbage") == []
    assert len(await listed()) == 3

    async with get_db().tenant_session(await tenant_ref(tenant_a.slug)) as session:
        found = await resolve_listing(session, row_id(tmall["id"]), "1001", "2001")
        assert found is not None and found.code == "L-KIT"
        assert (await resolve_listing(session, row_id(tmall["id"]), "1002", None)).code == "L-MACHINE"
        assert (await resolve_listing(session, row_id(tmall["id"]), "1002", "")).code == "L-MACHINE"
        assert await resolve_listing(session, row_id(tmall["id"]), "1001", None) is None  # the SKU matters
        assert await resolve_listing(session, row_id(jd["id"]), "1001", "2001") is None  # so does the channel
        assert await resolve_listing(session, row_id(tmall["id"]), "9999", "") is None

    res = await gql(DELETE_LISTING, {"input": {"id": plain["id"]}}, token=tenant_a.token)
    assert res["deleteChannelListing"] == {"deletedId": plain["id"], "userErrors": []}
    assert (await gql(NODE, {"id": plain["id"]}, token=tenant_a.token))["node"] is None
    res = await gql(DELETE_LISTING, {"input": {"id": plain["id"]}}, token=tenant_a.token)
    assert errors(res["deleteChannelListing"]) == [("NOT_FOUND", ["id"])]
    async with get_db().tenant_session(await tenant_ref(tenant_a.slug)) as session:
        assert await resolve_listing(session, row_id(tmall["id"]), "1002", "") is None
