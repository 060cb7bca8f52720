"""Bulk stock import: the GraphQL rows mutation, the CSV upload and ``oms import stock`` all apply the
good rows, report the bad ones by position, and leave a ledger that replays to the levels."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from app.catalog.models import Material
from app.inventory import bulk, ledger
from app.inventory.models import Location, StockLevel, StockMovement
from tests.cli_support import oms
from tests.factories import tenant_ref
from tests.inventory_helpers import Stock, location, material

FIXTURE = Path(__file__).parent / "fixtures" / "inventory" / "stock_with_errors.csv"
RESULT = "reference applied unchanged failed"


@pytest.fixture
async def stock(db, gql, tenant_a) -> Stock:
    """Tenant A with locations WH-EAST, WH-WEST and materials MAT-A, MAT-B."""
    s = Stock(gql, tenant_a, await tenant_ref(tenant_a.slug))
    async with db.tenant_session(s.tref) as session:
        for code in ("WH-EAST", "WH-WEST"):
            await location(session, code=code)
        for code in ("MAT-A", "MAT-B"):
            await material(session, code=code)
    return s


async def levels(db, stock: Stock) -> dict[tuple[str, str], tuple[int, int]]:
    """(location code, material code) -> (on hand, safety stock)."""
    async with db.tenant_session(stock.tref) as s:
        rows = await s.execute(
            select(Location.code, Material.code, StockLevel.on_hand, StockLevel.safety_stock)
            .join(Location, Location.id == StockLevel.location_id)
            .join(Material, Material.id == StockLevel.material_id)
        )
        return {(loc, mat): (on_hand, safety) for loc, mat, on_hand, safety in rows}


async def ledger_ok(db, stock: Stock) -> bool:
    async with db.tenant_session(stock.tref) as s:
        return await ledger.check_ledger(s) == []


async def test_bulk_set_stock_applies_good_rows_and_reports_bad_ones(db, stock):
    rows = [
        {"locationCode": "WH-EAST", "materialCode": "MAT-A", "onHand": 10, "safetyStock": 2},
        {"locationCode": "WH-EAST", "materialCode": "MAT-NOPE", "onHand": 1},
        {"locationCode": "WH-WEST", "materialCode": "MAT-A", "onHand": 1_500_000},
        {"locationCode": "WH-WEST", "materialCode": "MAT-B", "onHand": 2_000_000},
        {"locationCode": " ", "materialCode": "MAT-B", "onHand": 1},
        {"locationCode": "WH-WEST", "materialCode": "MAT-B", "onHand": 4, "safetyStock": 3_000_000},
        {"locationCode": "WH-WEST", "materialCode": "MAT-B", "onHand": 4},
    ]
    fields = f"{RESULT} rows {{ index stockLevel {{ onHand safetyStock }} userErrors {{ field code }} }}"
    res = await stock.mutate("bulkSetStock", {"rows": rows}, fields)
    assert (res["applied"], res["unchanged"], res["failed"], res["userErrors"]) == (2, 0, 5, [])
    assert [r["index"] for r in res["rows"]] == list(range(7))
    errors = {r["index"]: [(e["field"], e["code"]) for e in r["userErrors"]] for r in res["rows"]}
    assert errors == {
        0: [],
        1: [(["rows", "1", "materialCode"], "NOT_FOUND")],
        2: [(["rows", "2", "onHand"], "INVALID_QUANTITY")],
        3: [(["rows", "3", "onHand"], "INVALID_QUANTITY")],
        4: [(["rows", "4", "locationCode"], "INVALID_CODE")],
        5: [(["rows", "5", "safetyStock"], "INVALID_QUANTITY")],
        6: [],
    }
    assert res["rows"][0]["stockLevel"] == {"onHand": 10, "safetyStock": 2}
    assert res["rows"][1]["stockLevel"] is None
    assert await levels(db, stock) == {("WH-EAST", "MAT-A"): (10, 2), ("WH-WEST", "MAT-B"): (4, 0)}

    # Every change is in the ledger under the import's reference; the same rows again change nothing.
    moved = await stock(
        "query($r: String) { stockMovements(filter: {reference: $r}) { edges { node { kind } } } }",
        {"r": res["reference"]},
    )
    assert sorted(e["node"]["kind"] for e in moved["stockMovements"]["edges"]) == ["count", "count", "safety"]
    again = await stock.mutate("bulkSetStock", {"rows": [rows[0], rows[6]]}, RESULT)
    assert (again["applied"], again["unchanged"], again["failed"]) == (0, 2, 0)
    assert await ledger_ok(db, stock)

    # A negative count is not a row to report but a malformed call: refused whole, naming the row.
    negative = [rows[0], {**rows[6], "onHand": -5}]
    res = await stock.mutate("bulkSetStock", {"rows": negative}, RESULT)
    assert [(e["code"], e["field"]) for e in res["userErrors"]] == [("OUT_OF_RANGE", ["rows", "1", "onHand"])]
    assert res["applied"] in (0, None)

    for bad in ([], [rows[0]] * 1001):
        res = await stock.mutate("bulkSetStock", {"rows": bad}, RESULT)
        assert [e["code"] for e in res["userErrors"]] == ["INVALID_ROWS"]


async def test_csv_upload_keeps_good_rows_and_reports_bad_lines(db, stock):
    csv = FIXTURE.read_text()
    fields = f"{RESULT} errors {{ line column code message }}"
    res = await stock.mutate("importStockCsv", {"csv": csv}, fields)
    assert (res["applied"], res["unchanged"], res["failed"], res["userErrors"]) == (3, 0, 7, [])
    assert [(e["line"], e["column"], e["code"]) for e in res["errors"]] == [
        (4, "on_hand", "INVALID_QUANTITY"),
        (5, "on_hand", "INVALID_QUANTITY"),
        (6, "location_code", "NOT_FOUND"),
        (7, "material_code", "NOT_FOUND"),
        (8, None, "DUPLICATE_ROW"),
        (9, None, "INVALID_ROW"),
        (10, "on_hand", "INVALID_QUANTITY"),
    ]
    messages = {e["line"]: e["message"] for e in res["errors"]}
    assert "cannot be negative" in messages[4] and "on line 2" in messages[8]
    assert "'WH-NOPE'" in messages[6] and "expected 4 columns, found 3" in messages[9]
    expected = {("WH-EAST", "MAT-A"): (10, 2), ("WH-EAST", "MAT-B"): (5, 0), ("WH-WEST", "MAT-B"): (3, 1)}
    assert await levels(db, stock) == expected

    again = await stock.mutate("importStockCsv", {"csv": csv}, RESULT)
    assert (again["applied"], again["unchanged"], again["failed"]) == (0, 3, 7)
    assert await levels(db, stock) == expected
    assert await ledger_ok(db, stock)

    for bad, code in [
        ("", "INVALID_CSV"),
        ("location_code,on_hand\nWH-EAST,1\n", "INVALID_CSV"),
        ("location_code,material_code,on_hand,colour\n", "INVALID_CSV"),
        ("location_code,material_code,on_hand\n" + "WH-EAST,MAT-A,1\n" * 5001, "CSV_TOO_LARGE"),
    ]:
        res = await stock.mutate("importStockCsv", {"csv": bad}, RESULT)
        assert [e["code"] for e in res["userErrors"]] == [code]
    assert await levels(db, stock) == expected


async def test_a_failing_chunk_is_reported_and_the_import_goes_on(db, stock):
    attempts = {"n": 0}

    @asynccontextmanager
    async def flaky_first_chunk():
        attempts["n"] += 1
        if attempts["n"] <= 2:  # the first chunk fails twice (its retry included)
            raise DBAPIError("COMMIT", {}, Exception("deadlock detected"))
        async with db.tenant_session(stock.tref) as session:
            yield session

    rows = [bulk.StockRow(i, "WH-EAST", code, 7) for i, code in enumerate(["MAT-A", "MAT-B"])]
    rows.append(bulk.StockRow(2, "WH-WEST", "MAT-A", 1))
    chunks: list[int] = []
    summary = await bulk.import_rows(
        flaky_first_chunk, rows, actor="test", chunk_size=2, on_chunk=lambda r: chunks.append(len(r))
    )
    assert chunks == [2, 1]
    assert [(r.line, r.errors[0].code) for r in summary.failed] == [(0, "CHUNK_FAILED"), (1, "CHUNK_FAILED")]
    assert summary.applied == 1
    assert await levels(db, stock) == {("WH-WEST", "MAT-A"): (1, 0)}


async def test_cli_import_shows_progress_and_a_summary(db, stock, tmp_path):
    async with db.tenant_session(stock.tref) as s:
        for i in range(20):
            await location(s, code=f"CLI-L{i:02}")
        for i in range(30):
            await material(s, code=f"CLI-M{i:02}")
    path = tmp_path / "stock.csv"
    lines = ["location_code,material_code,on_hand"]
    lines += [f"CLI-L{i:02},CLI-M{j:02},{i + j}" for i in range(20) for j in range(30)]
    lines += ["CLI-L00,CLI-M00,-1", "CLI-L00,NOPE,1"]  # lines 602 and 603
    path.write_text("\n".join(lines) + "\n")

    result = oms("import", "stock", str(path), "--tenant", stock.tenant.slug, "--chunk-size", "100")
    assert result.returncode == 1, result.stderr  # some rows failed
    assert "602/602" in result.stderr and "row" in result.stderr  # the tqdm bar reached the end
    assert "line 602: on_hand cannot be negative (got -1) (INVALID_QUANTITY)" in result.stderr
    assert "line 603: no material with code 'NOPE' (NOT_FOUND)" in result.stderr
    # CLI-L00,CLI-M00,0 counts zero where nothing was: unchanged, and nothing is written for it.
    assert "602 rows: 599 applied, 1 unchanged, 2 failed" in result.stdout
    async with db.tenant_session(stock.tref) as s:
        total = await s.scalar(select(func.sum(StockLevel.on_hand)))
        movements = await s.scalar(select(func.count()).select_from(StockMovement))
    assert total == sum(i + j for i in range(20) for j in range(30))
    assert movements == 599
    assert await ledger_ok(db, stock)

    fixture = oms("import", "stock", str(FIXTURE), "--tenant", stock.tenant.slug)
    assert fixture.returncode == 1
    assert "10 rows: 3 applied, 0 unchanged, 7 failed" in fixture.stdout
    assert [line.split(":")[0] for line in fixture.stderr.splitlines() if line.startswith("line ")] == [
        f"line {n}" for n in (4, 5, 6, 7, 8, 9, 10)
    ]

    clean = tmp_path / "clean.csv"
    clean.write_text("location_code,material_code,on_hand\nWH-EAST,MAT-A,10\n")
    unchanged = oms("import", "stock", str(clean), "--tenant", stock.tenant.slug)
    assert unchanged.returncode == 0 and "1 rows: 0 applied, 1 unchanged, 0 failed" in unchanged.stdout

    unknown = oms("import", "stock", str(clean), "--tenant", "no_such_tenant")
    assert unknown.returncode == 2 and "not found" in unknown.stderr
    missing = oms("import", "stock", str(tmp_path / "missing.csv"), "--tenant", stock.tenant.slug)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


# ---- the batched path ------------------------------------------------------------------------------


async def test_an_import_enqueues_one_sync_job_and_a_constant_number_of_statements(db, stock, monkeypatch):
    """1,200 rows in three chunks: one channel-sync job for the tenant, and the same statements per
    chunk whatever its size (set-based), each change still its own ledger movement."""
    from sqlalchemy import event

    from app.inventory import signals
    from app.outbox import OutboxMessage

    # The first chunk's wake-up for waiting orders stays pending for the whole import, so the later
    # chunks rely on it (one statement) rather than enqueue their own when it comes due.
    monkeypatch.setattr(signals, "RESUME_DEBOUNCE", timedelta(hours=1))

    async with db.tenant_session(stock.tref) as s:
        for i in range(40):
            await location(s, code=f"BIG-L{i:02}")
        for i in range(30):
            await material(s, code=f"BIG-M{i:02}")

    async def sync_jobs() -> int:
        async with db.control_session() as s:
            return await s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.tenant_id == stock.tref.id, OutboxMessage.job == "sync_channel_stock")
            )

    statements: list[int] = []

    def seen(*_args) -> None:
        statements[-1] += 1

    def open_session():
        statements.append(0)
        return db.tenant_session(stock.tref)

    rows = [
        bulk.StockRow(i, f"BIG-L{i % 40:02}", f"BIG-M{i // 40:02}", 1 + i % 7, i % 3 or None)
        for i in range(1_200)
    ]
    jobs = await sync_jobs()
    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        summary = await bulk.import_rows(open_session, rows, actor="test", chunk_size=500)
        small = await bulk.import_rows(open_session, rows[:10], actor="test", chunk_size=500)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert (summary.applied, summary.unchanged, summary.failed) == (1_200, 0, [])
    assert (small.applied, small.unchanged) == (0, 10)
    assert await sync_jobs() == jobs + 1
    first, second, third, again = statements  # 500, 500 and 200 rows, then 10 unchanged rows again
    assert max(first, second, third) <= 16 and abs(second - third) <= 1, statements  # not per row
    assert again < first, statements  # unchanged rows write nothing
    async with db.tenant_session(stock.tref) as s:
        mine = StockMovement.reference == summary.reference
        moved = await s.scalar(select(func.count()).select_from(StockMovement).where(mine))
    assert moved == 1_200 + sum(1 for i in range(1_200) if i % 3)  # a count each, a safety for 2 in 3
    assert await ledger_ok(db, stock)


async def test_receive_many_and_count_many(db, stock):
    from app.errors import UserError
    from app.inventory import service

    async with db.tenant_session(stock.tref) as s:
        (east, west), (a, b) = (
            [await s.scalar(select(Location.id).where(Location.code == c)) for c in ("WH-EAST", "WH-WEST")],
            [await s.scalar(select(Material.id).where(Material.code == c)) for c in ("MAT-A", "MAT-B")],
        )
        levels = await service.receive_many(
            s,
            [
                service.ReceiveRow(east, a, 5),
                service.ReceiveRow(east, a, 2),  # two deliveries of one pair: two receipts
                service.ReceiveRow(west, b, 4),
            ],
            reference="ASN-7",
        )
        assert [lv.on_hand for lv in levels] == [7, 7, 4]
        counted = await service.count_many(
            s,
            [
                service.CountRow(east, a, 6, safety_stock=1),
                service.CountRow(west, b, 4),  # as it is: unchanged
                service.CountRow(west, a, 0),  # nothing there, counted nothing: unchanged, no level
            ],
            reference="COUNT-1",
        )
        assert [(c.level and (c.level.on_hand, c.level.safety_stock), c.changed) for c in counted] == [
            ((6, 1), True),
            ((4, 0), False),
            (None, False),
        ]
        kinds = (
            await s.scalars(
                select(StockMovement.kind)
                .where(StockMovement.reference.in_(["ASN-7", "COUNT-1"]))
                .order_by(StockMovement.id)
            )
        ).all()
        assert [k.value for k in kinds] == ["receipt", "receipt", "receipt", "count", "safety"]
        for bad, code in [
            ([service.CountRow(east, a, 1), service.CountRow(east, a, 2)], "DUPLICATE_ROW"),
            ([service.CountRow(east, a, -1)], "INVALID_QUANTITY"),
            ([], "INVALID_ROWS"),
        ]:
            with pytest.raises(UserError) as err:
                await service.count_many(s, bad)
            assert err.value.code == code
    assert await ledger_ok(db, stock)
