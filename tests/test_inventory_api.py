"""Inventory through the public GraphQL surface: locations, stock changes, levels and the ledger, ATP
per channel, reservations without oversell, clear errors for bad quantities, scopes, and tenant
isolation for every inventory query and mutation."""

from __future__ import annotations

import asyncio

import pytest

from app.catalog.models import ChannelListing, ProductKind
from app.inventory import ledger
from app.inventory.sync import sync_pending
from tests.factories import tenant_ref
from tests.inventory_helpers import ERRORS, LEVEL, RESERVATION, Stock, channel, material, product

LOCATION = "id code name kind status statusReason lat lng capabilities tags"


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


@pytest.fixture
async def stock_a(db, gql, tenant_a) -> Stock:
    return Stock(gql, tenant_a, await tenant_ref(tenant_a.slug))


@pytest.fixture
async def stock_b(db, gql, tenant_b) -> Stock:
    return Stock(gql, tenant_b, await tenant_ref(tenant_b.slug))


async def catalog(db, stock: Stock, *components: int, kind=ProductKind.single, **product_kw):
    """A material per component quantity and one product made of them; returns their global ids."""
    async with db.tenant_session(stock.tref) as s:
        materials = [await material(s) for _ in components]
        p = await product(s, list(zip(materials, components, strict=True)), kind=kind, **product_kw)
    return [stock.id("Material", m.id) for m in materials], stock.id("Product", p.id)


async def make_channel(db, stock: Stock, **kw) -> str:
    async with db.tenant_session(stock.tref) as s:
        return stock.id("Channel", (await channel(s, **kw)).id)


# ---- locations -------------------------------------------------------------------------------------


async def test_create_location_validates_and_lists_with_filters(stock_a):
    res = await stock_a.mutate(
        "createLocation",
        {
            "code": " SH-01 ",
            "name": "Shanghai store",
            "kind": "store",
            "city": "Shanghai",
            "lat": 31.23,
            "lng": 121.47,
            "capabilities": ["ship", "pickup", "pickup"],
            "tags": ["east", "flagship"],
        },
        f"location {{ {LOCATION} }}",
    )
    assert res["userErrors"] == []
    loc = res["location"]
    assert (loc["code"], loc["kind"], loc["status"], loc["capabilities"]) == (
        "SH-01",
        "store",
        "active",
        ["ship", "pickup"],
    )
    bad = [  # numbers and text are bounded first, in one place (app.api.input_bounds)
        ("OUT_OF_RANGE", {"lat": 91.0, "lng": 0.0}),
        ("INVALID_CAPABILITY", {"capabilities": ["teleport"]}),
        ("DUPLICATE_CODE", {"code": "SH-01"}),
        ("INVALID_CHARACTERS", {"name": "bad\x00name"}),
        ("OUT_OF_RANGE", {"dailyCapacity": -1}),
        ("OUT_OF_RANGE", {"dailyCapacity": 2**31 - 1}),
        ("OUT_OF_RANGE", {"priority": -1}),
    ]
    for code, extra in bad:
        given = {"code": "X-1", "name": "X", "kind": "warehouse", **extra}
        res = await stock_a.mutate("createLocation", given, "location { id }")
        assert (res["location"], codes(res)) == (None, [code]), (code, res)
    one_sided = await stock_a.mutate(
        "createLocation", {"code": "X-2", "name": "X", "kind": "store", "lat": 10.0}, "location { id }"
    )
    assert codes(one_sided) == ["INVALID_COORDINATES"]

    await stock_a.location("WH-NORTH", tags=["north"])
    doc = "query($f: LocationFilter) { locations(filter: $f) { edges { node { code } } } }"

    async def listed(**f) -> list[str]:
        return [e["node"]["code"] for e in (await stock_a(doc, {"f": f}))["locations"]["edges"]]

    assert await listed() == ["SH-01", "WH-NORTH"]
    assert await listed(kind="store") == ["SH-01"]
    assert await listed(tag="north") == ["WH-NORTH"]
    assert await listed(search="shang") == ["SH-01"]
    assert await listed(search="%") == []
    assert await listed(status="paused") == []
    node = await stock_a("query($id: ID!) { node(id: $id) { ... on Location { code } } }", {"id": loc["id"]})
    assert node["node"] == {"code": "SH-01"}


async def test_receive_adjust_count_and_the_ledger_through_graphql(db, stock_a):
    (mat,), _ = await catalog(db, stock_a, 1)
    loc = await stock_a.location("WH-1")
    level = await stock_a.receive(loc, mat, 10)
    assert (level["onHand"], level["available"], level["location"]["code"]) == (10, 10, "WH-1")
    target = {"locationId": loc, "materialId": mat}

    adjusted = await stock_a.mutate(
        "adjustStock", {**target, "delta": -2, "reason": "broken in aisle"}, "stockLevel { onHand }"
    )
    assert adjusted["stockLevel"] == {"onHand": 8}
    no_reason = await stock_a.mutate("adjustStock", {**target, "delta": -1, "reason": " "})
    assert codes(no_reason) == ["REASON_REQUIRED"]
    too_many = await stock_a.mutate("adjustStock", {**target, "delta": -9, "reason": "lost"})
    assert codes(too_many) == ["INSUFFICIENT_STOCK"]

    counted = await stock_a.mutate("countStock", {**target, "counted": 6}, "stockLevel { onHand }")
    assert counted["stockLevel"] == {"onHand": 6}
    safety = await stock_a.mutate(
        "setSafetyStock", {**target, "safetyStock": 2}, "stockLevel { safetyStock available }"
    )
    assert safety["stockLevel"] == {"safetyStock": 2, "available": 4}
    defective = await stock_a.mutate(
        "markDefective", {**target, "quantity": 1, "reason": "dented"}, f"stockLevel {{ {LEVEL} }}"
    )
    level = defective["stockLevel"]
    assert (level["onHand"], level["defective"], level["available"]) == (5, 1, 3)
    assert level["materialCode"].startswith("MAT-") and level["materialId"] == mat

    levels = await stock_a(
        "query($f: StockLevelFilter) { stockLevels(filter: $f) { edges { node { id onHand } } } }",
        {"f": {"locationId": loc}},
    )
    assert [e["node"] for e in levels["stockLevels"]["edges"]] == [{"id": level["id"], "onHand": 5}]
    node = await stock_a(
        "query($id: ID!) { node(id: $id) { ... on StockLevel { onHand } } }", {"id": level["id"]}
    )
    assert node["node"] == {"onHand": 5}

    movements = await stock_a(
        """query($f: StockMovementFilter) { stockMovements(filter: $f) { edges { node {
             id kind dOnHand dDefective dSafety reason actor location { code } } } } }""",
        {"f": {"materialId": mat}},
    )
    rows = [e["node"] for e in movements["stockMovements"]["edges"]]
    assert [(r["kind"], r["dOnHand"], r["dDefective"], r["dSafety"]) for r in rows] == [
        ("adjustment", -1, 1, 0),
        ("safety", 0, 0, 2),
        ("count", -2, 0, 0),
        ("adjustment", -2, 0, 0),
        ("receipt", 10, 0, 0),
    ]
    assert rows[0]["actor"].startswith("user:") and rows[3]["reason"] == "broken in aisle"
    receipts = await stock_a("{ stockMovements(filter: {kind: receipt}) { edges { node { dOnHand } } } }")
    assert [e["node"]["dOnHand"] for e in receipts["stockMovements"]["edges"]] == [10]
    assert [n["onHand"] for n in await stock_a.network(mat)] == [5]
    async with db.tenant_session(stock_a.tref) as s:
        assert await ledger.check_ledger(s) == []


async def test_transfers_and_low_level_filter(db, stock_a):
    (mat,), _ = await catalog(db, stock_a, 1)
    east, west = await stock_a.location("EAST"), await stock_a.location("WEST")
    await stock_a.receive(east, mat, 8)
    res = await stock_a.mutate(
        "transferStock",
        {"fromLocationId": east, "toLocationId": west, "materialId": mat, "quantity": 3, "reference": "TR-1"},
        "source { onHand inTransit } target { onHand inTransit }",
    )
    assert (res["source"], res["target"]) == ({"onHand": 5, "inTransit": 0}, {"onHand": 0, "inTransit": 3})
    same = await stock_a.mutate(
        "transferStock", {"fromLocationId": east, "toLocationId": east, "materialId": mat, "quantity": 1}
    )
    assert codes(same) == ["INVALID_TRANSFER"]
    assert [n["onHand"] for n in await stock_a.network(mat)] == [5]
    arrived = await stock_a.mutate(
        "receiveTransfer",
        {"locationId": west, "materialId": mat, "quantity": 3, "reference": "TR-1"},
        "stockLevel { onHand inTransit }",
    )
    assert arrived["stockLevel"] == {"onHand": 3, "inTransit": 0}
    assert [n["onHand"] for n in await stock_a.network(mat)] == [8]
    over = await stock_a.mutate("receiveTransfer", {"locationId": west, "materialId": mat, "quantity": 1})
    assert codes(over) == ["INSUFFICIENT_STOCK"]

    await stock_a.mutate("setSafetyStock", {"locationId": west, "materialId": mat, "safetyStock": 3})
    low = await stock_a(
        "{ stockLevels(filter: {lowOnly: true}) { edges { node { location { code } available } } } }"
    )
    assert [e["node"] for e in low["stockLevels"]["edges"]] == [
        {"location": {"code": "WEST"}, "available": 0}
    ]
    page = await stock_a("{ stockLevels(first: 1) { edges { cursor } pageInfo { hasNextPage endCursor } } }")
    assert page["stockLevels"]["pageInfo"]["hasNextPage"] is True
    rest = await stock_a(
        "query($a: String) { stockLevels(first: 5, after: $a) { edges { node { location { code } } } } }",
        {"a": page["stockLevels"]["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["location"]["code"] for e in rest["stockLevels"]["edges"]] == ["WEST"]


async def test_pausing_a_location_takes_its_stock_out_of_atp(db, stock_a):
    (mat,), prod = await catalog(db, stock_a, 1)
    east, west = await stock_a.location("P-EAST"), await stock_a.location("P-WEST")
    await stock_a.receive(east, mat, 7)
    await stock_a.receive(west, mat, 5)
    assert (await stock_a.atp(materials=[mat], products=[prod]))["products"][0]["available"] == 12

    status = "location { status statusReason }"
    no_reason = await stock_a.mutate("setLocationStatus", {"id": east, "status": "paused"}, status)
    assert codes(no_reason) == ["REASON_REQUIRED"]
    paused = await stock_a.mutate(
        "setLocationStatus", {"id": east, "status": "paused", "reason": "WMS outage"}, status
    )
    assert paused["location"] == {"status": "paused", "statusReason": "WMS outage"}
    atp = await stock_a.atp(materials=[mat], products=[prod])
    assert (atp["materials"][0]["available"], atp["products"][0]["available"]) == (5, 5)
    assert codes(await stock_a.reserve("P-1", [(prod, 6)])) == ["INSUFFICIENT_STOCK"]

    resumed = await stock_a.mutate("setLocationStatus", {"id": east, "status": "active"}, status)
    assert resumed["location"] == {"status": "active", "statusReason": None}
    assert (await stock_a.atp(materials=[mat]))["materials"][0]["available"] == 12
    await stock_a.mutate("setLocationStatus", {"id": west, "status": "closed", "reason": "lease ended"})
    assert (await stock_a.atp(materials=[mat]))["materials"][0]["available"] == 7


async def test_pools_protection_and_atp_per_channel(db, stock_a):
    (machine, beans), bundle = await catalog(db, stock_a, 1, 3, kind=ProductKind.bundle)
    async with db.tenant_session(stock_a.tref) as s:
        virtual = stock_a.id("Product", (await product(s, [], kind=ProductKind.virtual)).id)
    core, quota, share = (
        await make_channel(db, stock_a, is_core=True),
        await make_channel(db, stock_a),
        await make_channel(db, stock_a),
    )
    loc = await stock_a.location("POOL-WH")
    await stock_a.receive(loc, machine, 10)
    await stock_a.receive(loc, beans, 100)

    pool = "allocationPool { id mode value channelId materialId }"
    res = await stock_a.mutate(
        "setAllocationPool", {"channelId": quota, "materialId": machine, "mode": "quota", "value": 4}, pool
    )
    assert res["allocationPool"]["materialId"] == machine and res["allocationPool"]["channelId"] == quota
    res = await stock_a.mutate("setAllocationPool", {"channelId": core, "mode": "shared"}, pool)
    assert res["allocationPool"]["materialId"] is None
    res = await stock_a.mutate(
        "setAllocationPool", {"channelId": share, "materialId": machine, "mode": "percent", "value": 50}, pool
    )
    assert res["allocationPool"]["value"] == 50
    bad = await stock_a.mutate("setAllocationPool", {"channelId": share, "mode": "percent", "value": 150})
    assert codes(bad) == ["INVALID_POOL"]
    fractional = await stock_a.mutate(
        "setAllocationPool", {"channelId": quota, "mode": "quota", "value": 2.5}
    )
    assert codes(fractional) == ["INVALID_POOL"]
    protection = await stock_a.mutate(
        "setLowStockProtection", {"protectBelow": 2}, "settings { protectBelow }"
    )
    assert protection["settings"] == {"protectBelow": 2}
    assert (await stock_a("{ inventorySettings { protectBelow } }"))["inventorySettings"]["protectBelow"] == 2

    async def product_atp(channel_id):
        atp = await stock_a.atp(channel_id, products=[bundle, virtual])
        return [p["available"] for p in atp["products"]]

    # Bundle = 1 machine + 3 beans: the machine (10) is scarcer than the beans (100 / 3).
    assert await product_atp(None) == [10, None]
    assert await product_atp(core) == [10, None]
    assert await product_atp(quota) == [4, None]  # a quota of 4 machines
    assert await product_atp(share) == [5, None]  # 50% of 10 machines
    pools = await stock_a("{ allocationPools { edges { node { mode } } } }")
    assert sorted(e["node"]["mode"] for e in pools["allocationPools"]["edges"]) == [
        "percent",
        "quota",
        "shared",
    ]

    assert (await stock_a.reserve("Q-1", [(bundle, 3)], quota))["userErrors"] == []
    assert await product_atp(quota) == [1, None]
    assert codes(await stock_a.reserve("Q-2", [(bundle, 2)], quota)) == ["INSUFFICIENT_STOCK"]
    assert (await stock_a.reserve("CORE-1", [(bundle, 7)], core))["userErrors"] == []
    assert await product_atp(None) == [0, None]


# ---- reservations ----------------------------------------------------------------------------------


async def test_reserve_and_release_by_reference(db, stock_a):
    (mat,), prod = await catalog(db, stock_a, 1)
    loc = await stock_a.location("RES-WH")
    await stock_a.receive(loc, mat, 5)
    res = await stock_a.reserve("ORDER-1", [(prod, 2)])
    assert res["userErrors"] == []
    [held] = res["reservations"]
    assert (held["reference"], held["quantity"], held["status"], held["materialId"]) == (
        "ORDER-1",
        2,
        "active",
        mat,
    )
    again = await stock_a.reserve("ORDER-1", [(prod, 2)])
    assert again["reservations"] == res["reservations"]  # idempotent
    assert [n["reserved"] for n in await stock_a.network(mat)] == [2]
    short = await stock_a.reserve("ORDER-2", [(prod, 1), (prod, 3)])
    assert short["userErrors"][0]["code"] == "INSUFFICIENT_STOCK" and short["reservations"] is None

    listed = await stock_a('{ reservations(filter: {reference: "ORDER-1"}) { edges { node { id } } } }')
    assert [e["node"]["id"] for e in listed["reservations"]["edges"]] == [held["id"]]

    fields = f"released reservations {{ {RESERVATION} }}"
    released = await stock_a.mutate("releaseStock", {"reference": "ORDER-1", "reason": "cancelled"}, fields)
    assert released["released"] == 2 and released["reservations"][0]["status"] == "released"
    twice = await stock_a.mutate("releaseStock", {"reference": "ORDER-1"}, fields)
    assert (twice["released"], twice["userErrors"]) == (0, [])
    unknown = await stock_a.mutate("releaseStock", {"reference": "NO-SUCH-ORDER"}, fields)
    assert codes(unknown) == ["NOT_FOUND"]
    assert [n["reserved"] for n in await stock_a.network(mat)] == [0]

    too_many = await stock_a.reserve("ORDER-3", [(prod, 1)] * 101)
    assert codes(too_many) == ["INVALID_LINES"]
    assert codes(await stock_a.reserve("", [(prod, 1)])) == ["INVALID_REFERENCE"]
    assert codes(await stock_a.reserve("ORDER-4", [])) == ["INVALID_LINES"]


async def test_no_oversell_200_concurrent_graphql_reservations(db, stock_a):
    (mat,), prod = await catalog(db, stock_a, 1)
    loc = await stock_a.location("LAST-10")
    await stock_a.receive(loc, mat, 10)

    async def one(i: int) -> list[str]:
        return codes(await stock_a.reserve(f"RUSH-{i}", [(prod, 1)]))

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert sum(r == [] for r in results) == 10
    assert all(r in ([], ["INSUFFICIENT_STOCK"]) for r in results)
    [network] = await stock_a.network(mat)
    assert (network["onHand"], network["reserved"], network["available"]) == (10, 10, 0)
    assert (await stock_a.atp(materials=[mat]))["materials"][0]["available"] == 0
    async with db.tenant_session(stock_a.tref) as s:
        assert await ledger.check_ledger(s) == []


async def test_one_reference_reserved_concurrently_is_held_once(db, stock_a):
    (mat,), prod = await catalog(db, stock_a, 1)
    await stock_a.receive(await stock_a.location("SAME-REF"), mat, 50)
    results = await asyncio.gather(*(stock_a.reserve("DUP-1", [(prod, 3)]) for _ in range(8)))
    assert all(r["userErrors"] == [] and r["reservations"][0]["quantity"] == 3 for r in results)
    assert [n["reserved"] for n in await stock_a.network(mat)] == [3]


async def test_odd_inputs_get_answers_not_internal_errors(db, gql, stock_a):
    async with db.tenant_session(stock_a.tref) as s:
        virtual = stock_a.id("Product", (await product(s, [], kind=ProductKind.virtual)).id)
    assert await stock_a.reserve("VIRTUAL-1", [(virtual, 2)]) == {"reservations": [], "userErrors": []}
    assert codes(await stock_a.reserve("bad\x00ref", [(virtual, 1)])) == ["INVALID_CHARACTERS"]
    assert codes(await stock_a.reserve("VIRTUAL-2", [(virtual, -1)])) == ["OUT_OF_RANGE"]
    nul = "a\x00b"  # PostgreSQL text cannot hold NUL: refused before any query, naming the filter
    for field, document in (
        ("stockMovements", "stockMovements(filter: {reference: $t}) { edges { node { id } } }"),
        ("reservations", "reservations(filter: {reference: $t}) { edges { node { id } } }"),
        ("locations", "locations(filter: {search: $t}) { edges { node { id } } }"),
        ("locations", "locations(filter: {tag: $t}) { edges { node { id } } }"),
    ):
        r = await gql.raw(f"query($t: String) {{ {document} }}", {"t": nul}, **stock_a.auth)
        [error] = r.json()["errors"]
        assert (error["path"], error["extensions"]["reason"]) == ([field], "INVALID_CHARACTERS")
    for cursor in ("garbage", "czo5OTk5OTk5OTk5OTk5OTk5OTk5OTox"):
        r = await gql.raw(
            "query($a: String) { stockLevels(after: $a) { edges { cursor } } }", {"a": cursor}, **stock_a.auth
        )
        assert r.json()["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


# ---- bad quantities --------------------------------------------------------------------------------


@pytest.mark.parametrize("qty", [-1, 0, 10**9])
async def test_bad_quantities_are_user_errors_at_every_entry_point(db, stock_a, qty):
    (mat,), prod = await catalog(db, stock_a, 1)
    loc, other = await stock_a.location(f"Q{qty}-A"), await stock_a.location(f"Q{qty}-B")
    await stock_a.receive(loc, mat, 5)
    at = {"locationId": loc, "materialId": mat}
    calls = [
        ("receiveStock", {**at, "quantity": qty}),
        ("markDefective", {**at, "quantity": qty}),
        ("receiveTransfer", {**at, "quantity": qty}),
        ("transferStock", {"fromLocationId": loc, "toLocationId": other, "materialId": mat, "quantity": qty}),
        ("adjustStock", {**at, "delta": {-1: -(10**9)}.get(qty, qty), "reason": "typo"}),
        ("reserveStock", {"reference": f"Q{qty}", "lines": [{"productId": prod, "quantity": qty}]}),
    ]
    if qty != 0:  # zero is a valid count, safety stock and protection level
        calls += [
            ("countStock", {**at, "counted": qty}),
            ("setSafetyStock", {**at, "safetyStock": qty}),
            ("setLowStockProtection", {"protectBelow": qty}),
        ]
    # 0 passes the API's bounds and is refused by the ledger; -1 and 10**9 never reach it.
    expected = "INVALID_QUANTITY" if qty == 0 else "OUT_OF_RANGE"
    for name, given in calls:
        res = await stock_a.mutate(name, given)
        assert codes(res) == [expected], (name, res)
        assert res["userErrors"][0]["message"]
    [network] = await stock_a.network(mat)
    assert (network["onHand"], network["reserved"]) == (5, 0)


# ---- scopes ----------------------------------------------------------------------------------------


async def test_a_read_only_key_can_read_but_not_write(db, gql, stock_a):
    created = await gql(
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
        {"input": {"name": "dashboard", "scopes": ["inventory:read"]}},
        token=stock_a.tenant.token,
    )
    read_only = created["createApiKey"]["key"]
    loc = await stock_a.location("RO-WH")
    (mat,), _ = await catalog(db, stock_a, 1)
    listed = await gql("{ locations { edges { node { id } } } }", api_key=read_only)
    assert [e["node"]["id"] for e in listed["locations"]["edges"]] == [loc]
    writes = [
        ("createLocation", {"code": "RO-2", "name": "x", "kind": "store"}),
        ("receiveStock", {"locationId": loc, "materialId": mat, "quantity": 1}),
        ("setLocationStatus", {"id": loc, "status": "paused", "reason": "x"}),
        ("reserveStock", {"reference": "RO", "lines": []}),
        ("bulkSetStock", {"rows": []}),
        ("importStockCsv", {"csv": "location_code,material_code,on_hand\n"}),
    ]
    for name, given in writes:
        input_type = name[0].upper() + name[1:] + "Input"
        r = await gql.raw(
            f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {ERRORS} }} }}",
            {"input": given},
            api_key=read_only,
        )
        assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", name
    level = await stock_a.network(mat)
    assert level[0]["onHand"] == 0

    no_inventory = (
        await gql(
            """mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }""",
            {"input": {"name": "orders only", "scopes": ["orders:read"]}},
            token=stock_a.tenant.token,
        )
    )["createApiKey"]["key"]
    r = await gql.raw("{ locations { edges { node { id } } } }", api_key=no_inventory)
    assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": loc}, api_key=no_inventory)
    assert node["node"] is None


# ---- tenant isolation ------------------------------------------------------------------------------


async def _a_inventory(db, stock_a: Stock) -> dict[str, str]:
    """One of every inventory object in tenant A; returns their global ids (and A's catalog ids)."""
    async with db.tenant_session(stock_a.tref) as s:
        m = await material(s, low_stock_threshold=5)
        p = await product(s, [(m, 1)])
        ch = await channel(s)
        s.add(ChannelListing(channel_id=ch.id, external_item_id="ITEM-A", product_id=p.id))
    mat, prod, chan = stock_a.id("Material", m.id), stock_a.id("Product", p.id), stock_a.id("Channel", ch.id)
    loc = await stock_a.location("A-SECRET-WH")
    level = await stock_a.receive(loc, mat, 10)
    pool = await stock_a.mutate(
        "setAllocationPool", {"channelId": chan, "mode": "quota", "value": 8}, "allocationPool { id }"
    )
    [reservation] = (await stock_a.reserve("A-ORDER-1", [(prod, 6)], chan))["reservations"]
    async with db.tenant_session(stock_a.tref) as s:
        assert await sync_pending(s) == 1
    data = await stock_a(
        """{ stockMovements(first: 1) { edges { node { id } } } stockAlerts { edges { node { id } } }
             stockPublications { edges { node { id quantity } } } }"""
    )
    [publication] = [e["node"] for e in data["stockPublications"]["edges"]]
    assert publication["quantity"] == 2  # the channel's quota (8) minus what it holds (6)
    return {
        "Location": loc,
        "StockLevel": level["id"],
        "StockMovement": data["stockMovements"]["edges"][0]["node"]["id"],
        "Reservation": reservation["id"],
        "AllocationPool": pool["allocationPool"]["id"],
        "StockAlert": data["stockAlerts"]["edges"][0]["node"]["id"],
        "StockPublication": publication["id"],
        "material": mat,
        "product": prod,
        "channel": chan,
    }


NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename } }"
LISTS = """{
  locations { edges { node { id code } } }
  stockLevels { edges { node { id } } }
  stockMovements { edges { node { id } } }
  reservations { edges { node { id reference } } }
  allocationPools { edges { node { id } } }
  stockAlerts { edges { node { id } } }
  stockPublications { edges { node { id } } }
}"""


@pytest.mark.parametrize("credential", ["token", "api_key"])
async def test_b_cannot_read_a_inventory_by_id_or_in_lists(db, gql, stock_a, stock_b, credential):
    a = await _a_inventory(db, stock_a)
    nodes = {k: v for k, v in a.items() if k[0].isupper()}
    for type_name, node_id in nodes.items():  # sanity: A sees each of them
        assert (await stock_a(NODE, {"id": node_id}))["node"]["__typename"] == type_name
    b_auth = {credential: getattr(stock_b.tenant, credential)}
    for node_id in nodes.values():
        assert (await gql(NODE, {"id": node_id}, **b_auth))["node"] is None
    assert (await gql(NODES, {"ids": list(nodes.values())}, **b_auth))["nodes"] == [None] * len(nodes)

    b_loc = await stock_b.location("B-WH")
    (b_mat,), _ = await catalog(db, stock_b, 1)
    await stock_b.receive(b_loc, b_mat, 1)
    lists = await gql(LISTS, **b_auth)
    seen = {e["node"]["id"] for conn in lists.values() for e in conn["edges"]}
    assert not seen & set(nodes.values())
    assert [e["node"]["code"] for e in lists["locations"]["edges"]] == ["B-WH"]
    assert lists["reservations"]["edges"] == [] and lists["stockAlerts"]["edges"] == []
    assert lists["stockPublications"]["edges"] == [] and lists["allocationPools"]["edges"] == []

    filtered = await gql(
        """query($loc: ID!, $mat: ID!) {
             stockLevels(filter: {locationId: $loc}) { edges { node { id } } }
             stockMovements(filter: {materialId: $mat}) { edges { node { id } } }
             reservations(filter: {reference: "A-ORDER-1"}) { edges { node { id } } }
             stockAlerts(materialId: $mat) { edges { node { id } } }
             networkStock(materialIds: [$mat]) { onHand } }""",
        {"loc": a["Location"], "mat": a["material"]},
        **b_auth,
    )
    assert filtered["networkStock"] == [None]
    assert all(
        filtered[k]["edges"] == [] for k in ("stockLevels", "stockMovements", "reservations", "stockAlerts")
    )
    atp = await gql(
        """query($m: [ID!], $p: [ID!]) { availableToPromise(materialIds: $m, productIds: $p) {
             materials { available } products { available } } }""",
        {"m": [a["material"]], "p": [a["product"]]},
        **b_auth,
    )
    assert atp["availableToPromise"] == {"materials": [None], "products": [None]}
    r = await gql.raw(
        "query($c: ID) { availableToPromise(channelId: $c) { materials { available } } }",
        {"c": a["channel"]},
        **b_auth,
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_b_cannot_change_or_reserve_a_inventory(db, gql, stock_a, stock_b):
    a = await _a_inventory(db, stock_a)
    b_loc = await stock_b.location("B-OWN")
    (b_mat,), b_prod = await catalog(db, stock_b, 1)
    at_a = {"locationId": a["Location"], "materialId": a["material"]}
    attempts = [
        ("setLocationStatus", {"id": a["Location"], "status": "closed", "reason": "hostile"}, "id"),
        ("receiveStock", {**at_a, "quantity": 5}, "locationId"),
        ("receiveStock", {"locationId": b_loc, "materialId": a["material"], "quantity": 5}, "materialId"),
        ("adjustStock", {**at_a, "delta": -5, "reason": "hostile"}, "locationId"),
        ("countStock", {**at_a, "counted": 0}, "locationId"),
        ("setSafetyStock", {**at_a, "safetyStock": 10}, "locationId"),
        ("markDefective", {**at_a, "quantity": 5, "reason": "hostile"}, "locationId"),
        ("receiveTransfer", {**at_a, "quantity": 1}, "locationId"),
        (
            "transferStock",
            {"fromLocationId": a["Location"], "toLocationId": b_loc, "materialId": b_mat, "quantity": 1},
            "fromLocationId",
        ),
        (
            "transferStock",
            {"fromLocationId": b_loc, "toLocationId": a["Location"], "materialId": b_mat, "quantity": 1},
            "toLocationId",
        ),
        ("setAllocationPool", {"channelId": a["channel"], "mode": "shared"}, "channelId"),
        (
            "reserveStock",
            {"reference": "B-1", "lines": [{"productId": a["product"], "quantity": 1}]},
            "productId",
        ),
        (
            "reserveStock",
            {"reference": "B-2", "channelId": a["channel"], "lines": [{"productId": b_prod, "quantity": 1}]},
            "channelId",
        ),
        ("releaseStock", {"reference": "A-ORDER-1"}, "reference"),
    ]
    for name, given, field in attempts:
        res = await stock_b.mutate(name, given)
        assert codes(res) == ["NOT_FOUND"], (name, res)
        assert res["userErrors"][0]["field"][-1] == field, (name, res)
    # Same reference in B is B's own (empty) business: reserving it never touches A's stock.
    own = await stock_b.reserve("A-ORDER-1", [(b_prod, 1)])
    assert codes(own) == ["INSUFFICIENT_STOCK"]
    bulk = await stock_b.mutate(
        "bulkSetStock",
        {"rows": [{"locationCode": "A-SECRET-WH", "materialCode": "B-none", "onHand": 0}]},
        "rows { userErrors { field code } }",
    )
    assert [e["code"] for e in bulk["rows"][0]["userErrors"]] == ["NOT_FOUND", "NOT_FOUND"]

    after = await stock_a(
        """query($id: ID!, $m: [ID!]!) { node(id: $id) { ... on Location { status } }
             networkStock(materialIds: $m) { onHand reserved safetyStock } }""",
        {"id": a["Location"], "m": [a["material"]]},
    )
    assert after["node"] == {"status": "active"}
    assert after["networkStock"] == [{"onHand": 10, "reserved": 6, "safetyStock": 0}]
    async with db.tenant_session(stock_a.tref) as s:
        assert await ledger.check_ledger(s) == []


# ---- review fixes ----------------------------------------------------------------------------------


async def test_closed_locations_and_released_references_are_clear_user_errors(db, stock_a):
    (mat,), prod = await catalog(db, stock_a, 1)
    loc, gone = await stock_a.location("STAYS"), await stock_a.location("GONE")
    await stock_a.receive(loc, mat, 5)
    await stock_a.mutate("setLocationStatus", {"id": gone, "status": "closed", "reason": "lease ended"})
    closed = await stock_a.mutate("receiveStock", {"locationId": gone, "materialId": mat, "quantity": 1})
    assert [(e["code"], e["field"]) for e in closed["userErrors"]] == [("LOCATION_CLOSED", ["locationId"])]
    moved = await stock_a.mutate(
        "transferStock", {"fromLocationId": loc, "toLocationId": gone, "materialId": mat, "quantity": 1}
    )
    assert [(e["code"], e["field"]) for e in moved["userErrors"]] == [("LOCATION_CLOSED", ["toLocationId"])]

    assert (await stock_a.reserve("CANCELLED-1", [(prod, 2)]))["userErrors"] == []
    await stock_a.mutate("releaseStock", {"reference": "CANCELLED-1"})
    again = await stock_a.reserve("CANCELLED-1", [(prod, 2)])
    assert (again["reservations"], codes(again)) == (None, ["RESERVATION_RELEASED"])
    assert [(n["onHand"], n["reserved"]) for n in await stock_a.network(mat)] == [(5, 0)]


@pytest.mark.parametrize("key", ["99999999999999999999", "9223372036854775808", "-1", "1e3", " 7", "", "1:2"])
async def test_out_of_range_or_malformed_cursors_are_invalid_cursor_errors(gql, stock_a, key):
    import base64

    await stock_a.location("CURSOR-WH")
    cursor = base64.urlsafe_b64encode(f"c:{key}".encode()).decode()
    for field in ("locations", "stockMovements", "reservations", "stockAlerts", "stockPublications"):
        doc = f"query($a: String) {{ {field}(after: $a) {{ edges {{ cursor }} }} }}"
        r = await gql.raw(doc, {"a": cursor}, **stock_a.auth)
        error = r.json()["errors"][0]
        assert (error["extensions"]["code"], error["message"]) == ("INVALID_CURSOR", "cursor is not valid")
    page = await stock_a("{ locations(first: 1) { pageInfo { endCursor } } }")
    end = page["locations"]["pageInfo"]["endCursor"]
    rest = await stock_a("query($a: String) { locations(after: $a) { edges { cursor } } }", {"a": end})
    assert rest["locations"]["edges"] == []  # a real cursor still works
