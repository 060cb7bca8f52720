"""GraphQL for catalog CSV files: imports take the CSV text and report errors per line; exports return
CSV text in the same columns."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from app.api.catalog import mutate
from app.api.errors import UserErrorType
from app.api.permissions import requires
from app.catalog import csv_export, csv_import, csv_io
from app.catalog.csv_io import ImportResult

_LIMITS = f"At most {csv_io.MAX_BYTES // (1024 * 1024)} MB and {csv_io.MAX_ROWS:,} rows."


@strawberry.input
class CsvImportInput:
    csv: str = strawberry.field(description=f"The file's text, first line naming the columns. {_LIMITS}")


@strawberry.type
class CsvRowError:
    line: int = strawberry.field(description="Line in the file where the row starts (the header is line 1).")
    message: str
    code: str


@strawberry.type
class CsvImportPayload:
    """Good rows are saved even when others fail; a problem with the whole file is a userError."""

    created: int = 0
    updated: int = 0
    error_count: int = 0
    errors: list[CsvRowError] = strawberry.field(
        default_factory=list, description=f"The first {csv_io.MAX_REPORTED_ERRORS:,} row errors."
    )
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def from_result(cls, result: ImportResult) -> CsvImportPayload:
        shown = result.errors[: csv_io.MAX_REPORTED_ERRORS]
        return cls(
            created=result.created,
            updated=result.updated,
            error_count=len(result.errors),
            errors=[CsvRowError(line=e.line, message=e.message, code=e.code) for e in shown],
        )


async def _import(info: Info, run, text: str) -> CsvImportPayload:
    return await mutate(
        info, lambda session: run(session, text), CsvImportPayload.from_result, CsvImportPayload
    )


async def _export(info: Info, run) -> str:
    async with info.context.tenant_session() as session:
        return await run(session)


@strawberry.type
class CatalogCsvQueries:
    @strawberry.field(
        permission_classes=requires("catalog:read"),
        description="Materials as CSV: "
        + ",".join(csv_import.MATERIAL_COLUMNS[0] + csv_import.MATERIAL_COLUMNS[1]),
    )
    async def export_materials_csv(self, info: Info) -> str:
        return await _export(info, csv_export.export_materials)

    @strawberry.field(
        permission_classes=requires("catalog:read"),
        description="Products as CSV; components as CODE*QUANTITY joined with ';'.",
    )
    async def export_products_csv(self, info: Info) -> str:
        return await _export(info, csv_export.export_products)

    @strawberry.field(permission_classes=requires("catalog:read"), description="Channel listings as CSV.")
    async def export_channel_listings_csv(self, info: Info) -> str:
        return await _export(info, csv_export.export_listings)


@strawberry.type
class CatalogCsvMutations:
    @strawberry.mutation(
        permission_classes=requires("catalog:write"),
        description="Upsert materials by code. Required columns: code, name; others optional. " + _LIMITS,
    )
    async def import_materials_csv(self, info: Info, input: CsvImportInput) -> CsvImportPayload:
        return await _import(info, csv_import.import_materials, input.csv)

    @strawberry.mutation(
        permission_classes=requires("catalog:write"),
        description="Upsert products by code. Required columns: code, name, kind, components"
        " (e.g. MAT-1*1;MAT-2*3). " + _LIMITS,
    )
    async def import_products_csv(self, info: Info, input: CsvImportInput) -> CsvImportPayload:
        return await _import(info, csv_import.import_products, input.csv)

    @strawberry.mutation(
        permission_classes=requires("catalog:write"),
        description="Upsert listings by channel code, external_item_id and external_sku_id."
        " Required columns: channel, external_item_id, product (a product code). " + _LIMITS,
    )
    async def import_channel_listings_csv(self, info: Info, input: CsvImportInput) -> CsvImportPayload:
        return await _import(info, csv_import.import_listings, input.csv)
