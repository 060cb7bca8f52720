"""GraphQL documents and small helpers shared by the catalog and channel tests."""

from __future__ import annotations

from pathlib import Path

from strawberry.relay import GlobalID

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"
ERRORS = "userErrors { field message code }"
MATERIAL_FIELDS = (
    "id code barcode name attributes weightG volumeCm3 serialTracked batchTracked coldChain fragile"
    " highValue lowStockThreshold createdAt updatedAt"
)
PRODUCT_FIELDS = (
    "id code name kind presale expectedShipDate allowBackorder active"
    " components { quantity material { id code } }"
)
CHANNEL_FIELDS = "id code name platform isCore active"
LISTING_FIELDS = "id externalItemId externalSkuId title active channel { id code } product { id code }"

CREATE_MATERIAL = f"""mutation($input: CreateMaterialInput!) {{
  createMaterial(input: $input) {{ material {{ {MATERIAL_FIELDS} }} {ERRORS} }} }}"""
UPDATE_MATERIAL = f"""mutation($input: UpdateMaterialInput!) {{
  updateMaterial(input: $input) {{ material {{ {MATERIAL_FIELDS} }} {ERRORS} }} }}"""
CREATE_PRODUCT = f"""mutation($input: CreateProductInput!) {{
  createProduct(input: $input) {{ product {{ {PRODUCT_FIELDS} }} {ERRORS} }} }}"""
UPDATE_PRODUCT = f"""mutation($input: UpdateProductInput!) {{
  updateProduct(input: $input) {{ product {{ {PRODUCT_FIELDS} }} {ERRORS} }} }}"""
CREATE_CHANNEL = f"""mutation($input: CreateChannelInput!) {{
  createChannel(input: $input) {{ channel {{ {CHANNEL_FIELDS} }} {ERRORS} }} }}"""
UPDATE_CHANNEL = f"""mutation($input: UpdateChannelInput!) {{
  updateChannel(input: $input) {{ channel {{ {CHANNEL_FIELDS} }} {ERRORS} }} }}"""
CREATE_LISTING = f"""mutation($input: CreateChannelListingInput!) {{
  createChannelListing(input: $input) {{ channelListing {{ {LISTING_FIELDS} }} {ERRORS} }} }}"""
DELETE_LISTING = f"""mutation($input: DeleteChannelListingInput!) {{
  deleteChannelListing(input: $input) {{ deletedId {ERRORS} }} }}"""
IMPORT = """mutation($input: CsvImportInput!) {{
  {name}(input: $input) {{ created updated errorCount errors {{ line message code }} {errors} }} }}"""
MATERIALS = f"""query($first: Int, $after: String, $filter: MaterialFilter) {{
  materials(first: $first, after: $after, filter: $filter) {{
    edges {{ cursor node {{ {MATERIAL_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
PRODUCTS = f"""query($filter: ProductFilter) {{
  products(first: 100, filter: $filter) {{ edges {{ node {{ {PRODUCT_FIELDS} }} }} }} }}"""
CHANNELS = f"""query($filter: ChannelFilter) {{
  channels(first: 100, filter: $filter) {{ edges {{ node {{ {CHANNEL_FIELDS} }} }} }} }}"""
LISTINGS = f"""query($filter: ChannelListingFilter) {{
  channelListings(first: 100, filter: $filter) {{ edges {{ node {{ {LISTING_FIELDS} }} }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


def row_id(gid: str) -> int:
    """The row id inside a tenant-scoped global id (``Type:<tenant id>.<row id>``)."""
    return int(GlobalID.from_id(gid).node_id.split(".")[1])


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def codes(connection: dict) -> list[str]:
    return [edge["node"]["code"] for edge in connection["edges"]]


async def create_material(gql, tenant, code: str, **extra) -> dict:
    data = await gql(
        CREATE_MATERIAL, {"input": {"code": code, "name": f"{code} name", **extra}}, token=tenant.token
    )
    assert data["createMaterial"]["userErrors"] == [], data
    return data["createMaterial"]["material"]


async def create_product(gql, tenant, code: str, kind: str, components=(), **extra) -> dict:
    comps = [{"materialId": m, "quantity": q} for m, q in components]
    variables = {"input": {"code": code, "name": f"{code} name", "kind": kind, "components": comps, **extra}}
    data = await gql(CREATE_PRODUCT, variables, token=tenant.token)
    assert data["createProduct"]["userErrors"] == [], data
    return data["createProduct"]["product"]


async def create_channel(gql, tenant, code: str, platform: str = "tmall", **extra) -> dict:
    variables = {"input": {"code": code, "name": f"{code} store", "platform": platform, **extra}}
    data = await gql(CREATE_CHANNEL, variables, token=tenant.token)
    assert data["createChannel"]["userErrors"] == [], data
    return data["createChannel"]["channel"]


async def create_listing(gql, tenant, channel_id: str, product_id: str, item: str, sku: str = "") -> dict:
    variables = {
        "input": {
            "channelId": channel_id,
            "productId": product_id,
            "externalItemId": item,
            "externalSkuId": sku,
        }
    }
    data = await gql(CREATE_LISTING, variables, token=tenant.token)
    assert data["createChannelListing"]["userErrors"] == [], data
    return data["createChannelListing"]["channelListing"]


async def import_csv(gql, tenant, name: str, text: str) -> dict:
    data = await gql(IMPORT.format(name=name, errors=ERRORS), {"input": {"csv": text}}, token=tenant.token)
    return data[name]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()
