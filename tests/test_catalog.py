"""Catalog through GraphQL: materials, sales products (kinds and components), explode, permissions."""

from __future__ import annotations

from strawberry.relay import GlobalID

from app.catalog import service
from app.db import get_db
from tests.catalog_ops import (
    CREATE_MATERIAL,
    CREATE_PRODUCT,
    MATERIALS,
    PRODUCTS,
    UPDATE_MATERIAL,
    UPDATE_PRODUCT,
    codes,
    create_material,
    create_product,
    errors,
    row_id,
)
from tests.conftest import CREATE_KEY
from tests.factories import tenant_ref


async def test_material_create_update_and_read(gql, tenant_a):
    created = await create_material(
        gql,
        tenant_a,
        "MAT-1",
        barcode="690123",
        attributes={"colour": "red", "size": "M"},
        weightG=250,
        coldChain=True,
        lowStockThreshold=10,
    )
    assert created["attributes"] == {"colour": "red", "size": "M"}
    assert (created["weightG"], created["coldChain"], created["fragile"]) == (250, True, False)

    data = await gql(
        UPDATE_MATERIAL,
        {"input": {"id": created["id"], "name": "Red T-shirt M", "barcode": None, "fragile": True}},
        token=tenant_a.token,
    )
    updated = data["updateMaterial"]["material"]
    assert data["updateMaterial"]["userErrors"] == []
    assert (updated["name"], updated["barcode"], updated["fragile"]) == ("Red T-shirt M", None, True)
    assert (updated["weightG"], updated["coldChain"], updated["code"]) == (250, True, "MAT-1")  # untouched
    assert updated["updatedAt"] >= created["updatedAt"]

    node = await gql(
        "query($id: ID!) { node(id: $id) { ... on Material { code name } } }",
        {"id": created["id"]},
        api_key=tenant_a.api_key,
    )
    assert node["node"] == {"code": "MAT-1", "name": "Red T-shirt M"}


async def test_material_list_search_filter_and_pages(gql, tenant_a):
    await create_material(gql, tenant_a, "TEE-RED-M", barcode="111222333", fragile=True)
    await create_material(gql, tenant_a, "TEE-BLUE-M", name="Blue 100%_cotton tee")
    await create_material(gql, tenant_a, "MUG-1", fragile=True, highValue=True)

    async def search(**flt) -> list[str]:
        return codes((await gql(MATERIALS, {"filter": flt}, token=tenant_a.token))["materials"])

    assert await search() == ["MUG-1", "TEE-BLUE-M", "TEE-RED-M"]  # newest first
    assert await search(search="tee-") == ["TEE-BLUE-M", "TEE-RED-M"]
    assert await search(search="22233") == ["TEE-RED-M"]  # barcode
    assert await search(search="COTTON") == ["TEE-BLUE-M"]  # name, case-insensitive
    assert await search(search="100%_") == ["TEE-BLUE-M"]  # LIKE wildcards are literal
    assert await search(search="e%t") == []  # as a wildcard it would match
    assert await search(fragile=True) == ["MUG-1", "TEE-RED-M"]
    assert await search(fragile=True, highValue=False) == ["TEE-RED-M"]
    assert await search(search="tee", fragile=False) == ["TEE-BLUE-M"]

    page = (await gql(MATERIALS, {"first": 2}, token=tenant_a.token))["materials"]
    assert codes(page) == ["MUG-1", "TEE-BLUE-M"] and page["pageInfo"]["hasNextPage"]
    rest = await gql(MATERIALS, {"first": 2, "after": page["pageInfo"]["endCursor"]}, token=tenant_a.token)
    assert codes(rest["materials"]) == ["TEE-RED-M"] and not rest["materials"]["pageInfo"]["hasNextPage"]

    bad = await gql.raw(MATERIALS, {"filter": {"search": "x" * 101}}, token=tenant_a.token)
    assert bad.json()["errors"][0]["extensions"]["code"] == "INVALID_SEARCH"


async def test_material_errors_are_user_errors(gql, tenant_a):
    first = await create_material(gql, tenant_a, "DUP-1", barcode="BC-1")
    second = await create_material(gql, tenant_a, "DUP-2")

    async def create(**fields) -> list:
        data = await gql(CREATE_MATERIAL, {"input": {"name": "x", **fields}}, token=tenant_a.token)
        assert data["createMaterial"]["material"] is None
        return errors(data["createMaterial"])

    assert await create(code="DUP-1") == [("DUPLICATE_CODE", ["code"])]
    assert await create(code="NEW-1", barcode="BC-1") == [("DUPLICATE_BARCODE", ["barcode"])]
    assert await create(code="has space") == [("INVALID_CODE", ["code"])]
    assert await create(code="A;B") == [("INVALID_CODE", ["code"])]
    assert await create(code="NEW-2", weightG=-1) == [("OUT_OF_RANGE", ["weightG"])]  # app.api.input_bounds
    assert await create(code="NEW-3", attributes=["not", "an", "object"]) == [
        ("INVALID_ATTRIBUTES", ["attributes"])
    ]
    # Control characters are refused for every input in one place (app.api.input_bounds).
    assert await create(code="NEW-4", attributes={"bad": "nul\u0000"}) == [
        ("INVALID_CHARACTERS", ["attributes"])
    ]
    assert await create(code="NEW-5", name="nul\u0000name") == [("INVALID_CHARACTERS", ["name"])]
    assert await create(code="NEW-6", name="   ") == [("INVALID_NAME", ["name"])]

    upd = await gql(UPDATE_MATERIAL, {"input": {"id": second["id"], "code": "DUP-1"}}, token=tenant_a.token)
    assert errors(upd["updateMaterial"]) == [("DUPLICATE_CODE", ["code"])]
    upd = await gql(UPDATE_MATERIAL, {"input": {"id": second["id"], "barcode": "BC-1"}}, token=tenant_a.token)
    assert errors(upd["updateMaterial"]) == [("DUPLICATE_BARCODE", ["barcode"])]
    upd = await gql(UPDATE_MATERIAL, {"input": {"id": first["id"], "fragile": None}}, token=tenant_a.token)
    assert errors(upd["updateMaterial"]) == [("INVALID_FLAG", ["fragile"])]
    upd = await gql(UPDATE_MATERIAL, {"input": {"id": first["id"], "code": "DUP-1"}}, token=tenant_a.token)
    assert upd["updateMaterial"]["userErrors"] == []  # its own code is not a duplicate
    for gid in ("garbage", str(GlobalID("Material", "999999.1")), str(GlobalID("Product", first["id"]))):
        upd = await gql(UPDATE_MATERIAL, {"input": {"id": gid, "name": "x"}}, token=tenant_a.token)
        assert errors(upd["updateMaterial"]) == [("NOT_FOUND", ["id"])]


async def test_products_of_every_kind(gql, tenant_a):
    machine = await create_material(gql, tenant_a, "MACHINE")
    beans = await create_material(gql, tenant_a, "BEANS")
    mug = await create_material(gql, tenant_a, "MUG")

    single = await create_product(gql, tenant_a, "P-MACHINE", "single", [(machine["id"], 1)])
    kit = await create_product(
        gql, tenant_a, "P-KIT", "bundle", [(machine["id"], 1), (beans["id"], 3)], allowBackorder=True
    )
    await create_product(gql, tenant_a, "P-GIFT", "gift", [(mug["id"], 1)])
    await create_product(gql, tenant_a, "P-CARD", "virtual")
    await create_product(gql, tenant_a, "P-INSTALL", "service", name="Installation")
    presale = await create_product(
        gql, tenant_a, "P-PRE", "single", [(beans["id"], 1)], presale=True, expectedShipDate="2027-03-01"
    )
    assert single["components"] == [{"quantity": 1, "material": {"id": machine["id"], "code": "MACHINE"}}]
    assert [(c["material"]["code"], c["quantity"]) for c in kit["components"]] == [
        ("MACHINE", 1),
        ("BEANS", 3),
    ]
    assert kit["allowBackorder"] is True and kit["kind"] == "bundle"
    assert (presale["presale"], presale["expectedShipDate"]) == (True, "2027-03-01")

    async def listed(**flt) -> list[str]:
        return codes((await gql(PRODUCTS, {"filter": flt}, token=tenant_a.token))["products"])

    assert await listed(kind="bundle") == ["P-KIT"]
    assert await listed(presale=True) == ["P-PRE"]
    assert await listed(search="install") == ["P-INSTALL"]
    assert await listed(search="p-card") == ["P-CARD"]
    assert len(await listed()) == 6
    all_products = (await gql(PRODUCTS, {}, token=tenant_a.token))["products"]["edges"]
    by_code = {e["node"]["code"]: e["node"] for e in all_products}
    assert by_code["P-CARD"]["components"] == [] and by_code["P-GIFT"]["kind"] == "gift"


async def test_component_rules_and_quantities(gql, tenant_a):
    machine = await create_material(gql, tenant_a, "Q-MACHINE")
    beans = await create_material(gql, tenant_a, "Q-BEANS")

    async def create(kind: str, comps, **extra) -> list:
        variables = {
            "input": {
                "code": "Q-P",
                "name": "x",
                "kind": kind,
                "components": [{"materialId": m, "quantity": q} for m, q in comps],
                **extra,
            }
        }
        data = await gql(CREATE_PRODUCT, variables, token=tenant_a.token)
        assert data["createProduct"]["product"] is None
        return errors(data["createProduct"])

    qty0 = ["components", "0", "quantity"]
    qty1 = ["components", "1", "quantity"]
    assert await create("bundle", [(beans["id"], 0)]) == [("INVALID_QUANTITY", qty0)]
    assert await create("bundle", [(beans["id"], -3)]) == [("OUT_OF_RANGE", qty0)]  # app.api.input_bounds
    assert await create("bundle", [(machine["id"], 1), (beans["id"], 10_001)]) == [("INVALID_QUANTITY", qty1)]
    assert await create("bundle", [(beans["id"], 2_000_000_000)]) == [("OUT_OF_RANGE", qty0)]
    assert await create("bundle", []) == [("INVALID_COMPONENTS", ["components"])]
    assert await create("single", [(beans["id"], 2)]) == [("INVALID_COMPONENTS", ["components"])]
    assert await create("single", [(beans["id"], 1), (machine["id"], 1)]) == [
        ("INVALID_COMPONENTS", ["components"])
    ]
    assert await create("gift", []) == [("INVALID_COMPONENTS", ["components"])]
    assert await create("virtual", [(beans["id"], 1)]) == [("INVALID_COMPONENTS", ["components"])]
    assert await create("service", [(beans["id"], 1)]) == [("INVALID_COMPONENTS", ["components"])]
    assert await create("bundle", [(beans["id"], 1), (beans["id"], 2)]) == [
        ("DUPLICATE_COMPONENT", ["components", "1", "materialId"])
    ]
    assert await create("bundle", [(beans["id"], 1), ("garbage", 1)]) == [
        ("NOT_FOUND", ["components", "1", "materialId"])
    ]
    assert await create("bundle", [(beans["id"], 1)] * 101) == [("TOO_MANY_COMPONENTS", ["components"])]
    assert await create("virtual", [], presale=True) == [("SHIP_DATE_REQUIRED", ["expectedShipDate"])]

    # A big but sane kit is fine: 10,000 is the limit, inclusive.
    ok = await create_product(gql, tenant_a, "Q-OK", "bundle", [(beans["id"], 10_000)])
    assert ok["components"][0]["quantity"] == 10_000
    dup = await gql(
        CREATE_PRODUCT, {"input": {"code": "Q-OK", "name": "again", "kind": "virtual"}}, token=tenant_a.token
    )
    assert errors(dup["createProduct"]) == [("DUPLICATE_CODE", ["code"])]


async def test_update_product(gql, tenant_a):
    machine = await create_material(gql, tenant_a, "U-MACHINE")
    beans = await create_material(gql, tenant_a, "U-BEANS")
    other = await create_product(gql, tenant_a, "U-OTHER", "virtual")
    product = await create_product(gql, tenant_a, "U-P", "single", [(machine["id"], 1)])

    async def update(**fields) -> dict:
        data = await gql(UPDATE_PRODUCT, {"input": {"id": product["id"], **fields}}, token=tenant_a.token)
        return data["updateProduct"]

    res = await update(kind="bundle", components=[{"materialId": beans["id"], "quantity": 3}], name="Kit")
    assert res["userErrors"] == []
    assert [(c["material"]["code"], c["quantity"]) for c in res["product"]["components"]] == [("U-BEANS", 3)]
    assert res["product"]["name"] == "Kit"
    # Changing the kind alone is checked against the current components.
    assert errors(await update(kind="virtual")) == [("INVALID_COMPONENTS", ["components"])]
    assert errors(await update(components=[{"materialId": beans["id"], "quantity": 0}])) == [
        ("INVALID_QUANTITY", ["components", "0", "quantity"])
    ]
    assert errors(await update(components=None)) == [("INVALID_COMPONENTS", ["components"])]
    assert errors(await update(code="U-OTHER")) == [("DUPLICATE_CODE", ["code"])]
    assert errors(await update(presale=True)) == [("SHIP_DATE_REQUIRED", ["expectedShipDate"])]
    res = await update(kind="virtual", components=[])
    assert res["userErrors"] == [] and res["product"]["components"] == []
    res = await update(presale=True, expectedShipDate="2027-01-31")
    assert (res["product"]["presale"], res["product"]["expectedShipDate"]) == (True, "2027-01-31")
    res = await update(presale=False)
    assert (res["product"]["presale"], res["product"]["expectedShipDate"]) == (False, None)
    assert other["code"] == "U-OTHER"


async def test_explode(gql, tenant_a):
    machine = await create_material(gql, tenant_a, "E-MACHINE")
    beans = await create_material(gql, tenant_a, "E-BEANS")
    mug = await create_material(gql, tenant_a, "E-MUG")
    kit = await create_product(gql, tenant_a, "E-KIT", "bundle", [(machine["id"], 1), (beans["id"], 3)])
    single = await create_product(gql, tenant_a, "E-MUG", "single", [(mug["id"], 1)])
    gift = await create_product(gql, tenant_a, "E-GIFT", "gift", [(mug["id"], 1)])
    card = await create_product(gql, tenant_a, "E-CARD", "virtual")
    service_ = await create_product(gql, tenant_a, "E-INSTALL", "service")

    async with get_db().tenant_session(await tenant_ref(tenant_a.slug)) as session:
        exploded = await service.explode(
            session,
            [row_id(p["id"]) for p in (kit, single, gift, card, service_)] + [row_id(kit["id"]), 999_999],
        )
    assert exploded == {
        row_id(kit["id"]): sorted([(row_id(machine["id"]), 1), (row_id(beans["id"]), 3)]),
        row_id(single["id"]): [(row_id(mug["id"]), 1)],
        row_id(gift["id"]): [(row_id(mug["id"]), 1)],
        row_id(card["id"]): [],
        row_id(service_["id"]): [],
    }


async def test_scopes(gql, tenant_a):
    async def key(*scopes: str) -> str:
        data = await gql(CREATE_KEY, {"input": {"name": "k", "scopes": list(scopes)}}, token=tenant_a.token)
        return data["createApiKey"]["key"]

    tenant_read, catalog_read = await key("tenant:read"), await key("catalog:read")
    material = await create_material(gql, tenant_a, "S-1")
    create = {"input": {"code": "S-2", "name": "x"}}
    for api_key in (tenant_read, catalog_read):
        r = await gql.raw(CREATE_MATERIAL, create, api_key=api_key)
        assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        r = await gql.raw(UPDATE_MATERIAL, {"input": {"id": material["id"], "name": "y"}}, api_key=api_key)
        assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        r = await gql.raw(
            'mutation { importMaterialsCsv(input: {csv: "code,name\\nS-3,x"}) { created } }', api_key=api_key
        )
        assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    r = await gql.raw(MATERIALS, {}, api_key=tenant_read)
    assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (
        await gql("query($id: ID!) { node(id: $id) { id } }", {"id": material["id"]}, api_key=tenant_read)
    )["node"] is None
    assert codes((await gql(MATERIALS, {}, api_key=catalog_read))["materials"]) == ["S-1"]
    assert (await gql.raw(MATERIALS, {})).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
