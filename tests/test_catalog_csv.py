"""Catalog CSV imports (row-level errors with line numbers, good rows kept, upsert) and exports."""

from __future__ import annotations

import csv
import io

from app.catalog import csv_import
from app.catalog.models import Material
from tests.catalog_ops import MATERIALS, PRODUCTS, codes, create_channel, create_material, fixture, import_csv

EXPORT = "{ exportMaterialsCsv exportProductsCsv exportChannelListingsCsv }"


def lines(result: dict) -> dict[int, str]:
    return {e["line"]: e["code"] for e in result["errors"]}


async def _materials(gql, tenant) -> dict:
    return await import_csv(gql, tenant, "importMaterialsCsv", fixture("materials.csv"))


async def _products(gql, tenant) -> dict:
    return await import_csv(gql, tenant, "importProductsCsv", fixture("products.csv"))


async def test_materials_csv_keeps_good_rows_and_reports_bad_lines(gql, tenant_a):
    result = await _materials(gql, tenant_a)
    assert result["userErrors"] == []
    assert (result["created"], result["updated"]) == (3, 0)
    # MAT-BEANS spans lines 3-4 (a quoted cell with a line break), so later rows are numbered by line.
    assert lines(result) == {
        5: "INVALID_ROW",  # weight "heavy"
        6: "INVALID_NUMBER",  # weight -5
        7: "DUPLICATE_CODE",
        8: "INVALID_CODE",  # no code
        9: "DUPLICATE_BARCODE",  # the machine's barcode, within the file
        10: "INVALID_ROW",  # flag "maybe"
        12: "INVALID_ROW",  # not JSON
        13: "RAGGED_ROW",
    }
    assert result["errorCount"] == 8
    messages = {e["line"]: e["message"] for e in result["errors"]}
    assert "weight_g" in messages[5] and "'heavy'" in messages[5]
    assert "line 3" in messages[7]

    listed = (await gql(MATERIALS, {}, token=tenant_a.token))["materials"]["edges"]
    by_code = {e["node"]["code"]: e["node"] for e in listed}
    assert set(by_code) == {"MAT-MACHINE", "MAT-BEANS", "MAT-MUG"}
    machine = by_code["MAT-MACHINE"]
    assert (machine["attributes"], machine["weightG"], machine["serialTracked"], machine["fragile"]) == (
        {"colour": "black"},
        5200,
        True,
        True,
    )
    assert machine["lowStockThreshold"] == 5 and by_code["MAT-BEANS"]["attributes"] == {
        "colour": "brown",
        "roast": "dark",
    }

    # Upsert by code: columns left out of the file stay as they were.
    again = await import_csv(
        gql, tenant_a, "importMaterialsCsv", "code,name\nMAT-MACHINE,Espresso machine\nNEW,New\n"
    )
    assert (again["created"], again["updated"], again["errors"]) == (1, 1, [])
    listed = (await gql(MATERIALS, {"filter": {"search": "MAT-MACHINE"}}, token=tenant_a.token))["materials"]
    machine = listed["edges"][0]["node"]
    assert (machine["name"], machine["weightG"], machine["barcode"]) == (
        "Espresso machine",
        5200,
        "6900000000011",
    )
    # A barcode that belongs to another material in the database is reported, not a 500.
    clash = await import_csv(
        gql, tenant_a, "importMaterialsCsv", "code,name,barcode\nNEW,New,6900000000011\n"
    )
    assert [(e["line"], e["code"]) for e in clash["errors"]] == [(2, "DUPLICATE_BARCODE")]
    assert "MAT-MACHINE" in clash["errors"][0]["message"]


async def test_products_csv_kinds_components_and_quantities(gql, tenant_a):
    await _materials(gql, tenant_a)
    result = await _products(gql, tenant_a)
    assert result["userErrors"] == []
    assert (result["created"], result["updated"]) == (6, 0)
    assert lines(result) == {
        8: "INVALID_QUANTITY",  # 0
        9: "INVALID_QUANTITY",  # -2
        10: "INVALID_QUANTITY",  # 1,000,000
        11: "INVALID_ROW",  # 1.5
        12: "NOT_FOUND",  # unknown material
        13: "INVALID_COMPONENTS",  # single with two parts
        14: "INVALID_COMPONENTS",  # virtual with stock
        15: "SHIP_DATE_REQUIRED",
        16: "INVALID_KIND",
        17: "DUPLICATE_CODE",
    }
    messages = {e["line"]: e["message"] for e in result["errors"]}
    assert "at least 1" in messages[8] and "at most 10,000" in messages[10] and "MAT-NOPE" in messages[12]

    products = (await gql(PRODUCTS, {}, token=tenant_a.token))["products"]["edges"]
    by_code = {e["node"]["code"]: e["node"] for e in products}
    kit = by_code["P-KIT"]
    assert [(c["material"]["code"], c["quantity"]) for c in kit["components"]] == [
        ("MAT-MACHINE", 1),
        ("MAT-BEANS", 3),
    ]
    assert kit["allowBackorder"] is True and by_code["P-CARD"]["components"] == []
    assert (by_code["P-PRE"]["presale"], by_code["P-PRE"]["expectedShipDate"]) == (True, "2027-03-01")
    assert [c["quantity"] for c in by_code["P-GIFT"]["components"]] == [1]  # "MAT-MUG" alone means 1

    # Re-import replaces the components of existing products.
    again = await import_csv(
        gql, tenant_a, "importProductsCsv", "code,name,kind,components\nP-KIT,Kit,bundle,MAT-BEANS*2\n"
    )
    assert (again["created"], again["updated"], again["errors"]) == (0, 1, [])
    kit = {
        e["node"]["code"]: e["node"]
        for e in (await gql(PRODUCTS, {}, token=tenant_a.token))["products"]["edges"]
    }["P-KIT"]
    assert [(c["material"]["code"], c["quantity"]) for c in kit["components"]] == [("MAT-BEANS", 2)]
    assert kit["allowBackorder"] is True  # not in the file: unchanged


async def test_listings_csv_and_exports_round_trip(gql, tenant_a):
    await _materials(gql, tenant_a)
    await _products(gql, tenant_a)
    await create_channel(gql, tenant_a, "TMALL")
    result = await import_csv(gql, tenant_a, "importChannelListingsCsv", fixture("listings.csv"))
    assert (result["created"], result["updated"]) == (3, 0)
    assert lines(result) == {
        4: "NOT_SELLABLE",  # gift
        5: "NOT_FOUND",  # channel
        6: "NOT_FOUND",  # product
        7: "DUPLICATE_LISTING",
        8: "INVALID_EXTERNAL_ITEM_ID",
    }
    moved = await import_csv(
        gql, tenant_a, "importChannelListingsCsv", "channel,external_item_id,product\nTMALL,1002,P-KIT\n"
    )
    assert (moved["created"], moved["updated"], moved["errors"]) == (0, 1, [])

    exported = await gql(EXPORT, token=tenant_a.token)
    listings = list(csv.DictReader(io.StringIO(exported["exportChannelListingsCsv"])))
    assert [(r["external_item_id"], r["external_sku_id"], r["product"], r["title"]) for r in listings] == [
        ("1001", "2001", "P-KIT", "Coffee kit"),
        ("1002", "", "P-KIT", "Machine"),
        ("1006", "", "P-CARD", "'=1+1"),  # a formula is escaped for spreadsheets
    ]
    products = {r["code"]: r for r in csv.DictReader(io.StringIO(exported["exportProductsCsv"]))}
    assert products["P-KIT"]["components"] == "MAT-BEANS*3;MAT-MACHINE*1"
    assert products["P-PRE"]["expected_ship_date"] == "2027-03-01"
    materials = {r["code"]: r for r in csv.DictReader(io.StringIO(exported["exportMaterialsCsv"]))}
    assert materials["MAT-MACHINE"]["attributes"] == '{"colour": "black"}'

    # Each export imports back cleanly as updates only, and changes nothing.
    for name, key in (
        ("importMaterialsCsv", "exportMaterialsCsv"),
        ("importProductsCsv", "exportProductsCsv"),
        ("importChannelListingsCsv", "exportChannelListingsCsv"),
    ):
        back = await import_csv(gql, tenant_a, name, exported[key])
        assert (back["created"], back["errors"], back["userErrors"]) == (0, [], []), name
    assert await gql(EXPORT, token=tenant_a.token) == exported


async def test_csv_file_level_problems(gql, tenant_a):
    async def problem(name: str, text: str) -> list:
        result = await import_csv(gql, tenant_a, name, text)
        assert (result["created"], result["updated"]) == (0, 0)
        return [(e["code"], e["field"]) for e in result["userErrors"]]

    csv_field = ["csv"]
    assert await problem("importMaterialsCsv", "") == [("CSV_EMPTY", csv_field)]
    assert await problem("importMaterialsCsv", "code,weight_g\nA,1\n") == [("CSV_MISSING_COLUMNS", csv_field)]
    assert await problem("importMaterialsCsv", "code,name,weigth_g\nA,a,1\n") == [
        ("CSV_UNKNOWN_COLUMNS", csv_field)
    ]
    assert await problem("importMaterialsCsv", "code,name,name\nA,a,b\n") == [
        ("CSV_REPEATED_COLUMNS", csv_field)
    ]
    assert await problem("importMaterialsCsv", "code,name\nA,a\x00\n") == [("INVALID_CHARACTERS", csv_field)]
    assert await problem("importMaterialsCsv", "code,name\n" + "A,a\n" * 50_001) == [
        ("CSV_TOO_LARGE", csv_field)
    ]
    big = "code,name\n" + ("A," + "x" * 1000 + "\n") * 5300
    assert await problem("importMaterialsCsv", big) == [("CSV_TOO_LARGE", csv_field)]
    assert await problem("importProductsCsv", "code,name,kind,components,expected_ship_date\n") == [
        ("CSV_MISSING_COLUMNS", csv_field)
    ]
    assert codes((await gql(MATERIALS, {}, token=tenant_a.token))["materials"]) == []

    # A BOM, CRLF line ends, upper-case headers and blank lines are all fine.
    ok = await import_csv(gql, tenant_a, "importMaterialsCsv", "\ufeffCode,Name\r\n\r\nA,a\r\nB,b\r\n")
    assert (ok["created"], ok["errors"]) == (2, [])


async def test_a_row_hitting_a_unique_violation_fails_alone(gql, tenant_a, monkeypatch):
    """A concurrent writer can take a barcode after the checks ran: only that row fails."""
    await create_material(gql, tenant_a, "OLD", barcode="BC-OLD")
    real = csv_import._lookup

    async def stale(session, key, value, keys):
        return {} if key is Material.barcode else await real(session, key, value, keys)

    monkeypatch.setattr(csv_import, "_lookup", stale)
    text = "code,name,barcode\nA,a,\nB,b,BC-OLD\nC,c,BC-C\n"
    result = await import_csv(gql, tenant_a, "importMaterialsCsv", text)
    assert (result["created"], result["updated"]) == (2, 0)
    assert [(e["line"], e["code"]) for e in result["errors"]] == [(3, "CONFLICT")]
    assert codes((await gql(MATERIALS, {}, token=tenant_a.token))["materials"]) == ["C", "A", "OLD"]
