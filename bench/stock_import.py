"""Benchmark: stock import rows per second through ``app.inventory.bulk`` (what ``oms import stock``,
``importStockCsv`` and ``bulkSetStock`` run), against the row-by-row path it replaced.

Run it as ``.venv/bin/python bench/stock_import.py [--rows N] [--quick]`` (5,000 rows by default,
``--quick`` means 1,000).

Why: a stock file from a WMS is tens of thousands of location x material rows. Each row is a count (on
hand becomes the figure) and optionally a safety stock, and each change must be one ledger movement
(DESIGN §4.5). Applied one ``service.count`` at a time, in a savepoint each, a row costs a dozen
statements; the batched path (``service.count_many``) applies a chunk of rows with a constant number of
set-based statements. This benchmark puts a number on both, in one run:

- the app: ``bulk.import_rows`` over ``bulk.read_csv`` of a CSV file written to a temporary directory,
  500 rows a transaction, exactly as the CLI does;
- the baseline: the same rows through ``service.count`` / ``service.set_safety_stock`` one row at a time,
  each in its own savepoint, in 500-row transactions (the import as it was before the batched path).

Each side imports its own materials (same shape: ``--rows`` pairs over 50 locations) twice: first into
empty levels (every row creates a level), then with every figure changed (every row updates one). The
sides alternate (baseline, app, app, baseline over the two passes) so the drift of a noisy machine hits
both alike. At the end ``ledger.check_ledger`` must find no mismatch, and both sides must have written
the same number of movements.

Output: human-readable lines, then one final line of ``key=value`` pairs: ``rows_per_s`` (the app, both
passes), ``baseline_rows_per_s``, ``ratio`` (app / baseline), per pass ``new_*`` and ``changed_*``, the
statements per row each side sent, and ``ledger_ok``.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common
from _common import bench_tenant, log

LOCATIONS = 50
CHUNK = 500


@dataclass
class Side:
    name: str
    prefix: str  # material codes of this side
    seconds: dict[str, float]
    rows: dict[str, int]
    statements: int = 0

    def per_s(self, phase: str | None = None) -> float:
        phases = [phase] if phase else list(self.seconds)
        return sum(self.rows[p] for p in phases) / sum(self.seconds[p] for p in phases)


def write_csv(path: Path, prefix: str, n_rows: int, materials: int, shift: int) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["location_code", "material_code", "on_hand", "safety_stock"])
        for i in range(n_rows):
            loc, mat = i % LOCATIONS, i // LOCATIONS
            on_hand = 5 + (i * 7 + shift) % 90
            safety = "" if i % 3 else str((i + shift) % 4)
            out.writerow([f"L{loc:03d}", f"{prefix}{mat:05d}", on_hand, safety])


async def baseline_import(open_session, path: Path, actor: str, reference: str) -> int:
    """The import as it was: resolve a chunk's codes, then one count (and safety) per row, each in its
    own savepoint. Returns rows read."""
    from sqlalchemy import select, tuple_

    from app.catalog.models import Material
    from app.errors import UserError
    from app.inventory import bulk, service
    from app.inventory.models import Location, StockLevel

    with path.open(newline="") as f:
        rows = list(bulk.read_csv(f))
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        async with open_session() as session:
            locations = dict(
                (
                    await session.execute(
                        select(Location.code, Location.id).where(
                            Location.code.in_({r.location_code for r in chunk})
                        )
                    )
                ).all()
            )
            materials = dict(
                (
                    await session.execute(
                        select(Material.code, Material.id).where(
                            Material.code.in_({r.material_code for r in chunk})
                        )
                    )
                ).all()
            )
            held = (await session.scalars(select(Material).where(Material.id.in_(materials.values())))).all()
            pairs = [(locations[r.location_code], materials[r.material_code]) for r in chunk]
            key = tuple_(StockLevel.location_id, StockLevel.material_id)
            current = {
                (lv.location_id, lv.material_id): (lv.on_hand, lv.safety_stock)
                for lv in (await session.execute(select(*StockLevel.__table__.c).where(key.in_(pairs)))).all()
            }
            for r in sorted(chunk, key=lambda r: (materials[r.material_code], locations[r.location_code])):
                loc, mat = locations[r.location_code], materials[r.material_code]
                on_hand = int(r.on_hand)
                safety = int(r.safety_stock) if r.safety_stock else None
                was_on_hand, was_safety = current.get((loc, mat), (None, 0))
                try:
                    async with session.begin_nested():
                        if was_on_hand != on_hand:
                            await service.count(session, loc, mat, on_hand, actor=actor, reference=reference)
                        if safety is not None and safety != was_safety:
                            await service.set_safety_stock(
                                session, loc, mat, safety, actor=actor, reference=reference
                            )
                except UserError as exc:
                    raise RuntimeError(f"baseline row {r.line} failed: {exc.message}") from exc
            del held
    return len(rows)


async def run(args: argparse.Namespace, db_url: str) -> dict[str, str]:
    from sqlalchemy import event, func, insert, select

    from app import db as dbmod
    from app.catalog.models import Material
    from app.inventory import bulk, ledger
    from app.inventory.models import Location, LocationKind, LocationStatus, StockMovement
    from app.redis import close_redis

    n_rows = args.rows or (1_000 if args.quick else 5_000)
    materials = -(-n_rows // LOCATIONS)
    database = dbmod.init_db(db_url)
    statements = 0

    def seen(*_args) -> None:
        nonlocal statements
        statements += 1

    try:
        tenant, _ = await bench_tenant(database, "bench_stock_import")
        sides = [Side("baseline", "B-", {}, {}), Side("app", "A-", {}, {})]
        async with database.tenant_session(tenant) as session:
            await session.execute(
                insert(Location),
                [
                    {
                        "code": f"L{i:03d}",
                        "name": f"Location {i}",
                        "kind": LocationKind.warehouse,
                        "status": LocationStatus.active,
                        "capabilities": ["ship"],
                        "tags": [],
                    }
                    for i in range(LOCATIONS)
                ],
            )
            await session.execute(
                insert(Material),
                [
                    {"code": f"{side.prefix}{m:05d}", "name": f"Material {m}", "attributes": {}}
                    for side in sides
                    for m in range(materials)
                ],
            )
        log(f"tenant {tenant.schema_name}: {LOCATIONS} locations, {materials} materials per side")
        event.listen(database.engine.sync_engine, "before_cursor_execute", seen)

        def open_session():
            return database.tenant_session(tenant)

        with tempfile.TemporaryDirectory() as tmp:
            order = [("new", sides[0]), ("new", sides[1]), ("changed", sides[1]), ("changed", sides[0])]
            for phase, side in order:
                path = Path(tmp) / f"{side.name}-{phase}.csv"
                write_csv(path, side.prefix, n_rows, materials, shift=0 if phase == "new" else 11)
                reference = f"bench-{side.name}-{phase}"
                before, start = statements, time.perf_counter()
                if side.name == "app":
                    with path.open(newline="") as f:
                        summary = await bulk.import_rows(
                            open_session, bulk.read_csv(f), actor="bench", reference=reference
                        )
                    if summary.failed:
                        raise RuntimeError(f"app import failed rows: {summary.failed[:3]}")
                    done = summary.total
                else:
                    done = await baseline_import(open_session, path, "bench", reference)
                side.seconds[phase] = time.perf_counter() - start
                side.rows[phase] = done
                side.statements += statements - before
                log(
                    f"{side.name:8} {phase:7} {done} rows in {side.seconds[phase]:6.2f} s = "
                    f"{done / side.seconds[phase]:8.0f} rows/s"
                )
        event.remove(database.engine.sync_engine, "before_cursor_execute", seen)

        async with database.tenant_session(tenant) as session:
            mismatches = await ledger.check_ledger(session)
            side = func.split_part(StockMovement.reference, "-", 2)
            moved = dict((await session.execute(select(side, func.count()).group_by(side))).all())
        same = moved.get("app") == moved.get("baseline")
        log(f"check_ledger: {len(mismatches)} mismatches; movements per side {moved}")
        ledger_ok = not mismatches and same
    finally:
        await close_redis()
        await dbmod.close_db()

    base, app_side = sides
    total_rows = sum(app_side.rows.values())
    return {
        "rows": str(n_rows),
        "rows_per_s": f"{app_side.per_s():.0f}",
        "baseline_rows_per_s": f"{base.per_s():.0f}",
        "ratio": f"{app_side.per_s() / base.per_s():.1f}",
        "new_rows_per_s": f"{app_side.per_s('new'):.0f}",
        "new_baseline_rows_per_s": f"{base.per_s('new'):.0f}",
        "changed_rows_per_s": f"{app_side.per_s('changed'):.0f}",
        "changed_baseline_rows_per_s": f"{base.per_s('changed'):.0f}",
        "statements_per_row": f"{app_side.statements / total_rows:.2f}",
        "baseline_statements_per_row": f"{base.statements / sum(base.rows.values()):.2f}",
        "ledger_ok": str(ledger_ok).lower(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="rows per file (default 5,000)")
    parser.add_argument("--quick", action="store_true", help="1,000 rows (< 60 s)")
    args = parser.parse_args(argv)
    if args.rows is not None and args.rows < LOCATIONS:
        parser.error(f"--rows must be at least {LOCATIONS}")
    return _common.run(lambda db_url: run(args, db_url))


if __name__ == "__main__":
    _common.main(main)
