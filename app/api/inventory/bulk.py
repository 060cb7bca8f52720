"""Bulk stock mutations: ``bulkSetStock`` (rows as input) and ``importStockCsv`` (a CSV document).

Both run ``app.inventory.bulk``: good rows are applied, bad rows are reported with their position.
Bigger files belong to ``oms import stock FILE --tenant SLUG``.
"""

from __future__ import annotations

import io
from itertools import islice

import strawberry
from strawberry.types import Info

from app.api.errors import UserErrorType
from app.api.inventory.common import WRITE, actor
from app.api.inventory.types import StockLevelNode
from app.errors import UserError
from app.inventory import bulk

MAX_ROWS = 1_000
MAX_CSV_ROWS = 5_000
MAX_CSV_CHARS = 1_000_000
_FIELDS = {
    "location_code": "locationCode",
    "material_code": "materialCode",
    "on_hand": "onHand",
    "safety_stock": "safetyStock",
}


@strawberry.input
class StockRowInput:
    location_code: str
    material_code: str
    on_hand: int = strawberry.field(description="Counted units: on hand becomes this.")
    safety_stock: int | None = strawberry.field(default=None, description="Left unchanged when omitted.")


@strawberry.input
class BulkSetStockInput:
    rows: list[StockRowInput] = strawberry.field(description=f"At most {MAX_ROWS:,} rows.")


@strawberry.type
class StockRowResult:
    index: int = strawberry.field(description="Position of the row in the input, from 0.")
    stock_level: StockLevelNode | None
    user_errors: list[UserErrorType]


@strawberry.type
class BulkSetStockPayload:
    reference: str | None = strawberry.field(
        default=None, description="The reference of every ledger movement of this import."
    )
    applied: int = strawberry.field(default=0, description="Rows that changed stock.")
    unchanged: int = strawberry.field(default=0, description="Good rows equal to the current stock.")
    failed: int = 0
    rows: list[StockRowResult] = strawberry.field(default_factory=list, description="One per input row.")
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class ImportStockCsvInput:
    csv: str = strawberry.field(
        description="Header location_code,material_code,on_hand[,safety_stock]; at most"
        f" {MAX_CSV_ROWS:,} rows."
    )


@strawberry.type
class StockCsvRowError:
    line: int = strawberry.field(description="Line of the file, the header being line 1.")
    column: str | None
    message: str
    code: str


@strawberry.type
class ImportStockCsvPayload:
    reference: str | None = None
    applied: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[StockCsvRowError] = strawberry.field(default_factory=list, description="Rows not imported.")
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _row_error(result: bulk.RowResult, exc: UserError) -> UserErrorType:
    name = exc.field[-1] if exc.field else None
    path = ["rows", str(result.line)] + ([_FIELDS.get(name, name)] if name else [])
    return UserErrorType(field=path, message=exc.message, code=exc.code)


def _failed(exc: UserError):
    return [UserErrorType.from_exc(exc)]


@strawberry.type
class BulkStockMutations:
    @strawberry.mutation(
        permission_classes=WRITE,
        description="Set on hand (as a count) and optionally safety stock by location and material"
        " code. Good rows are applied, bad rows reported.",
    )
    async def bulk_set_stock(self, info: Info, input: BulkSetStockInput) -> BulkSetStockPayload:
        if not 0 < len(input.rows) <= MAX_ROWS:
            return BulkSetStockPayload(
                user_errors=_failed(UserError("INVALID_ROWS", f"give 1-{MAX_ROWS:,} rows", "rows"))
            )
        rows = [
            bulk.StockRow(i, r.location_code, r.material_code, r.on_hand, r.safety_stock)
            for i, r in enumerate(input.rows)
        ]
        results: list[bulk.RowResult] = []
        summary = await bulk.import_rows(
            info.context.tenant_session, rows, actor=actor(info), on_chunk=results.extend, unit="row"
        )
        return BulkSetStockPayload(
            reference=summary.reference,
            applied=summary.applied,
            unchanged=summary.unchanged,
            failed=len(summary.failed),
            rows=[
                StockRowResult(
                    index=r.line,
                    stock_level=StockLevelNode.from_row(r.level) if r.level is not None else None,
                    user_errors=[_row_error(r, e) for e in r.errors],
                )
                for r in results
            ],
        )

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Import stock from CSV text. Good rows are kept; bad rows are listed by line.",
    )
    async def import_stock_csv(self, info: Info, input: ImportStockCsvInput) -> ImportStockCsvPayload:
        try:
            if len(input.csv) > MAX_CSV_CHARS:
                raise UserError(
                    "CSV_TOO_LARGE",
                    f"at most {MAX_CSV_CHARS:,} characters here; use `oms import stock` for big files",
                    "csv",
                )
            rows = list(
                islice(bulk.read_csv(io.StringIO(input.csv.lstrip("\ufeff"), newline="")), MAX_CSV_ROWS + 1)
            )
            if len(rows) > MAX_CSV_ROWS:
                raise UserError(
                    "CSV_TOO_LARGE",
                    f"at most {MAX_CSV_ROWS:,} rows here; use `oms import stock` for big files",
                    "csv",
                )
        except UserError as exc:
            return ImportStockCsvPayload(user_errors=_failed(exc))
        summary = await bulk.import_rows(info.context.tenant_session, rows, actor=actor(info))
        return ImportStockCsvPayload(
            reference=summary.reference,
            applied=summary.applied,
            unchanged=summary.unchanged,
            failed=len(summary.failed),
            errors=[
                StockCsvRowError(
                    line=r.line, column=e.field[-1] if e.field else None, message=e.message, code=e.code
                )
                for r in summary.failed
                for e in r.errors
            ],
        )
