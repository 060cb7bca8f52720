"""Orders in bulk through GraphQL: a batch of generic JSON orders, a CSV file, and inbox replays.

These go through the same doors as the channel webhooks (``app.orders.doors``): every payload is stored
raw in the inbox first, then parsed and ingested, so a bad order is kept (failed, replayable) and reported
per order instead of failing the batch.
"""

from __future__ import annotations

import json

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON
from strawberry.types import Info

from app import inbox_replay
from app.api.errors import UserErrorType, user_errors
from app.api.orders.common import WRITE, actor_name, need_row
from app.api.orders.inbox import InboxStatusEnum, tenant_inbox_id
from app.api.orders.loaders import order_loaders
from app.api.orders.types import OrderNode, OrderStatusEnum, status_of
from app.channels.models import Channel
from app.errors import NotFound, UserError
from app.inbox import InboxStatus
from app.orders import csv_import, doors
from app.orders.doors import DoorResult

MAX_ORDERS = 1000
MAX_CSV_BYTES = 10 * 1024 * 1024


@strawberry.input
class IngestOrdersInput:
    channel_id: strawberry.ID
    orders: list[JSON] = strawberry.field(
        description=f"Up to {MAX_ORDERS} orders in the channel's format (generic: oms.order.v1)."
    )


@strawberry.input
class ImportOrdersCsvInput:
    channel_id: strawberry.ID
    csv: str | None = strawberry.field(
        default=None, description="The file's text: one row per order line, with a header."
    )
    file: Upload | None = strawberry.field(
        default=None,
        description="The file itself, as a GraphQL multipart upload (UTF-8 or GB18030); instead of csv.",
    )
    mapping: JSON | None = strawberry.field(
        default=None, description="Column mapping; the channel's saved mapping when left out."
    )


@strawberry.input
class ReplayInboxMessageInput:
    id: strawberry.ID


@strawberry.type
class OrderIngestResult:
    """What became of one payload. ``inboxStatus`` says whether it was processed or failed (and is kept
    for a replay); ``outcome`` what ingest did: created, updated, unchanged, stale, cancelled, …"""

    index: int | None = strawberry.field(description="Position in the input list (null for replays).")
    inbox_status: InboxStatusEnum
    outcome: str | None
    status: OrderStatusEnum | None = strawberry.field(description="The order's status after ingest.")
    number: str | None
    error: str | None = strawberry.field(description="What is wrong, naming the field path.")
    note: str | None
    inbox_message_id: strawberry.ID | None
    order_row_id: strawberry.Private[int | None]

    @strawberry.field
    async def order(self, info: Info) -> OrderNode | None:
        if self.order_row_id is None:
            return None
        row = await order_loaders(info).order.load(self.order_row_id)
        return OrderNode.from_row(row) if row else None

    @classmethod
    def from_result(cls, result: DoorResult, index: int | None) -> OrderIngestResult:
        return cls(
            index=index,
            inbox_status=InboxStatus(result.status),
            outcome=result.outcome,
            status=status_of(result.order_status),
            number=result.number,
            error=result.error,
            note=result.note,
            inbox_message_id=_inbox_gid(result.inbox_id),
            order_row_id=result.order_id,
        )


@strawberry.type
class IngestOrdersPayload:
    results: list[OrderIngestResult] = strawberry.field(default_factory=list)
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class CsvImportError:
    line: int | None = strawberry.field(description="1-based, counting the header line; null: the file.")
    column: str | None
    message: str


@strawberry.type
class ImportOrdersCsvPayload:
    inbox_status: InboxStatusEnum | None = strawberry.field(
        default=None, description="failed when the file could not be read or an order failed at ingest."
    )
    inbox_message_id: strawberry.ID | None = None
    orders: int = strawberry.field(default=0, description="Good orders read from the file.")
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = strawberry.field(default=0, description="Bad rows and orders (see errors).")
    errors: list[CsvImportError] = strawberry.field(default_factory=list)
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class ReplayInboxMessagePayload:
    result: OrderIngestResult | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


async def _channel_id(info: Info, gid: strawberry.ID) -> int:
    """The caller's channel row id, or NOT_FOUND on ``channelId``."""
    row = need_row(info, gid, "Channel", "channel", "channelId")
    async with info.context.tenant_session() as session:
        if await session.scalar(select(Channel.id).where(Channel.id == row)) is None:
            raise NotFound("channel", "channelId")
    return row


async def _csv_bytes(input: ImportOrdersCsvInput) -> bytes:
    """The file's bytes from exactly one of ``csv`` or ``file``, at most MAX_CSV_BYTES of them."""
    if (input.csv is None) == (input.file is None):
        code = "CSV_REQUIRED" if input.csv is None else "ONE_OF_CSV_OR_FILE"
        raise UserError(code, "give exactly one of csv (the text) or file (an upload)", "csv")
    too_large = f"a CSV file is at most {MAX_CSV_BYTES} bytes"
    if input.csv is not None:
        data = input.csv.encode()
        if len(data) > MAX_CSV_BYTES:
            raise UserError("TOO_LARGE", too_large, "csv")
        return data
    read = getattr(input.file, "read", None)
    if read is None:  # a string in the JSON variables instead of a multipart file part
        raise UserError("INVALID_FILE", "file must be a multipart upload (GraphQL multipart request)", "file")
    data = await read(MAX_CSV_BYTES + 1)  # starlette's UploadFile; never more than the limit in memory
    if len(data) > MAX_CSV_BYTES:
        raise UserError("TOO_LARGE", too_large, "file")
    return data


def _inbox_gid(inbox_id: int | None) -> strawberry.ID | None:
    return strawberry.ID(relay.to_base64("InboxMessage", inbox_id)) if inbox_id else None


@strawberry.type
class OrderBulkMutations:
    @strawberry.mutation(
        permission_classes=WRITE,
        description=f"Ingest up to {MAX_ORDERS} orders of one channel; each is stored in the inbox first"
        " and reported on its own.",
    )
    async def ingest_orders(self, info: Info, input: IngestOrdersInput) -> IngestOrdersPayload:
        if len(input.orders) > MAX_ORDERS:
            err = UserError("TOO_MANY", f"give at most {MAX_ORDERS} orders per call", "orders")
            return IngestOrdersPayload(user_errors=user_errors(err))
        try:
            channel_id = await _channel_id(info, input.channel_id)
            payloads = [json.dumps(o, ensure_ascii=False).encode() for o in input.orders]
            tenant = info.context.require_principal().tenant
            results = await doors.ingest_many(
                info.context.db, tenant, channel_id, payloads, actor=await actor_name(info)
            )
        except UserError as exc:
            if exc.field and exc.field[0] == "payloads":  # the doors' name for what we call orders
                exc.field = ["orders", *exc.field[1:]]
            return IngestOrdersPayload(user_errors=user_errors(exc))
        return IngestOrdersPayload(
            results=[OrderIngestResult.from_result(r, i) for i, r in enumerate(results)]
        )

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Import orders from a CSV file of order lines; bad rows are reported by line.",
    )
    async def import_orders_csv(self, info: Info, input: ImportOrdersCsvInput) -> ImportOrdersCsvPayload:
        try:
            data = await _csv_bytes(input)
        except UserError as exc:
            return ImportOrdersCsvPayload(user_errors=user_errors(exc))
        mapping = input.mapping
        if mapping is not None and not (
            isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values())
        ):
            err = UserError("INVALID_MAPPING", "the mapping is a JSON object of strings", "mapping")
            return ImportOrdersCsvPayload(user_errors=user_errors(err))
        try:
            channel_id = await _channel_id(info, input.channel_id)
            tenant = info.context.require_principal().tenant
            report = await csv_import.import_orders_csv(
                info.context.db, tenant, channel_id, data, input.mapping, actor=await actor_name(info)
            )
        except UserError as exc:
            return ImportOrdersCsvPayload(user_errors=user_errors(exc))
        return ImportOrdersCsvPayload(
            inbox_status=InboxStatus(report.status),
            inbox_message_id=_inbox_gid(report.inbox_id),
            orders=report.orders,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            failed=report.failed,
            errors=[CsvImportError(line=e.line, column=e.column, message=e.message) for e in report.errors],
        )

    @strawberry.mutation(
        permission_classes=WRITE, description="Process a stored payload again (e.g. after a fix)."
    )
    async def replay_inbox_message(
        self, info: Info, input: ReplayInboxMessageInput
    ) -> ReplayInboxMessagePayload:
        try:
            inbox_id = await tenant_inbox_id(info, input.id)
            tenant = info.context.require_principal().tenant
            actor = await actor_name(info)
            result = await inbox_replay.replay(info.context.db, tenant, inbox_id, actor=actor)
        except UserError as exc:
            return ReplayInboxMessagePayload(user_errors=user_errors(exc))
        return ReplayInboxMessagePayload(result=OrderIngestResult.from_result(result, None))
