"""CSV door: a file of order lines (one row per line, grouped by order id) into orders.

The raw file is stored in the inbox first (one row, source ``csv:<channel id>``, with the mapping it was
read with), so an import can be replayed. The csvfile adapter reads it: bad rows are reported with their
line number and their order skipped whole; every good order is then ingested in its own savepoint, in
transactions of ``CHUNK`` orders, so good orders are kept when others fail and a large file makes visible
progress. The inbox row ends ``processed`` when every parsed order went in (bad rows are noted), or
``failed`` when the file could not be read or an order failed at ingest — replaying re-runs the file,
which is harmless for the orders already in (ingest is idempotent).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select

from app.channels.adapters.csvfile import DEFAULT_MAPPING, parse_csv
from app.channels.models import Channel
from app.channels.normalized import AdapterError, NormalizedOrder
from app.db import Database, TenantRef
from app.errors import NotFound, UserError
from app.inbox import InboxMessage, InboxStatus, mark
from app.inbox import store as inbox_store
from app.orders.doors import DoorResult, failure_messages, in_savepoint, resolve_tenant
from app.orders.ingest import ingest

CHUNK = 200  # orders per transaction
MAX_FILE = 50 * 1024 * 1024
MAPPING_HEADER = "x-oms-csv-mapping"
SETTINGS_KEY = "csv_mapping"  # a channel's default mapping, in Channel.settings


@dataclass(frozen=True)
class CsvError:
    """One bad row (or order, or the whole file when ``line`` is None)."""

    line: int | None
    message: str
    column: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.column + ': ' if self.column else ''}{self.message}"


@dataclass
class CsvImportReport:
    inbox_id: int | None
    status: str = InboxStatus.processed.value  # of the inbox row: processed | failed
    orders: int = 0  # good orders read from the file
    created: int = 0
    updated: int = 0  # updated or cancelled by a newer version
    unchanged: int = 0  # already in (a re-import), or older than what is stored
    errors: list[CsvError] = field(default_factory=list)
    ingest_failures: int = 0  # orders that parsed but failed at ingest (these make the row failed)

    @property
    def failed(self) -> int:
        return len(self.errors)

    def summary(self) -> str:
        return (
            f"{self.orders} orders: {self.created} created, {self.updated} updated,"
            f" {self.unchanged} unchanged; {self.failed} failed"
        )


def _bytes(data: bytes | str | IO[Any]) -> bytes:
    if hasattr(data, "read"):
        data = data.read()
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_FILE:
        raise UserError("FILE_TOO_LARGE", f"the file is over {MAX_FILE // (1024 * 1024)} MB", "file")
    return raw


def _text(raw: bytes) -> str:
    """UTF-8 (with or without BOM); Chinese back offices often export GB18030/GBK, accepted as well."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            raise AdapterError("file", f"is neither UTF-8 nor GB18030 text (byte {exc.start})") from None


async def _channel_id(db: Database, ref: TenantRef, channel: int | str) -> int:
    """A channel id as given (ints), or the id of the channel with that code (strings)."""
    async with db.tenant_session(ref) as session:
        column = Channel.id if isinstance(channel, int) else Channel.code
        found = await session.scalar(select(Channel.id).where(column == channel))
    if found is None:
        raise NotFound("channel", "channel")
    return found


async def import_orders_csv(
    db: Database,
    tenant_ref: TenantRef | int,
    channel_id: int | str,
    data: bytes | str | IO[Any],
    mapping: Mapping[str, str] | None = None,
    progress: Callable[[int], Any] | None = None,
    *,
    actor: str = "csv",
) -> CsvImportReport:
    """Import a CSV file of orders for a channel (its id, or its code as a string).

    ``mapping`` is ``{field: column}`` (see ``app/channels/adapters/csvfile.py``); absent, the channel's
    ``settings["csv_mapping"]`` or the default (columns named like the fields). ``progress(total)`` may
    return a progress bar (anything with ``update(n)``), advanced as orders go in.
    """
    ref = await resolve_tenant(db, tenant_ref)
    cid = await _channel_id(db, ref, channel_id)
    raw = _bytes(data)
    headers = {"content-type": "text/csv"}
    if mapping is not None:
        headers[MAPPING_HEADER] = json.dumps(dict(mapping), ensure_ascii=False)
    async with db.control_session() as session:
        msg = await inbox_store(session, source=f"csv:{cid}", body=raw, headers=headers, tenant_id=ref.id)
        inbox_id = msg.id
    return await _run(db, ref, cid, inbox_id, raw, mapping, progress, actor)


async def replay_csv(
    db: Database, ref: TenantRef, channel_id: int, msg: InboxMessage, *, actor: str
) -> DoorResult:
    """Re-run a stored CSV file with the mapping it was first read with (``inbox_replay`` calls this)."""
    stored = (msg.headers or {}).get(MAPPING_HEADER)
    report = await _run(
        db, ref, channel_id, msg.id, msg.body, json.loads(stored) if stored else None, None, actor
    )
    problems = "; ".join(str(e) for e in report.errors[:5]) or None
    return DoorResult(msg.id, report.status, "csv", error=problems, note=report.summary())


async def _run(
    db: Database,
    ref: TenantRef,
    channel_id: int,
    inbox_id: int,
    raw: bytes,
    mapping: Mapping[str, str] | None,
    progress: Callable[[int], Any] | None,
    actor: str,
) -> CsvImportReport:
    report = CsvImportReport(inbox_id)
    try:
        async with db.tenant_session(ref) as session:
            channel = await session.get(Channel, channel_id)
            if channel is None:
                raise NotFound("channel", "channel")
            if not channel.active:
                raise UserError(
                    "CHANNEL_INACTIVE", f"channel {channel.code} is inactive: reactivate it, then replay"
                )
            platform, default = channel.platform, (channel.settings or {}).get(SETTINGS_KEY)
        text = _text(raw)
        mapping = dict(mapping or default or DEFAULT_MAPPING)
        parsed = parse_csv(text, mapping, platform=platform)
    except (AdapterError, UserError, csv.Error) as exc:
        message = getattr(exc, "message", None) or f"is not a readable CSV file: {exc}"
        report.errors.append(CsvError(None, message, getattr(exc, "path", None)))
        return await _finish(db, report, InboxStatus.failed)
    orders = [p for p in parsed if isinstance(p, NormalizedOrder)]
    report.errors += [CsvError(e.line, e.message, e.path) for e in parsed if isinstance(e, AdapterError)]
    report.orders = len(orders)
    lines = _first_lines(text, mapping)
    bar = progress(len(orders)) if progress else None
    outcomes: Counter[str] = Counter()
    try:
        for start in range(0, len(orders), CHUNK):
            chunk = orders[start : start + CHUNK]
            await _ingest_chunk(db, ref, channel_id, inbox_id, chunk, lines, report, outcomes, actor)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()
    report.created = outcomes["created"]
    report.updated = outcomes["updated"] + outcomes["cancelled"]
    report.unchanged = outcomes["unchanged"] + outcomes["stale"]
    report.errors.sort(key=lambda e: e.line or 0)
    return await _finish(db, report, InboxStatus.failed if report.ingest_failures else InboxStatus.processed)


async def _ingest_chunk(
    db: Database,
    ref: TenantRef,
    channel_id: int,
    inbox_id: int,
    chunk: list[NormalizedOrder],
    lines: dict[str, int],
    report: CsvImportReport,
    outcomes: Counter[str],
    actor: str,
) -> None:
    """One transaction, one savepoint per order; a failure of the transaction itself fails the chunk."""

    def work(session, order: NormalizedOrder):
        async def run(channel: Channel) -> DoorResult:
            r = await ingest(session, channel, order, inbox_id=inbox_id, actor=actor)
            return DoorResult(
                inbox_id, InboxStatus.processed.value, r.outcome, r.order_id, r.number, r.status
            )

        return run

    done: list[tuple[NormalizedOrder, DoorResult]] = []
    try:
        async with db.tenant_session(ref) as session:
            for order in chunk:
                result, _ = await in_savepoint(session, channel_id, inbox_id, work(session, order))
                done.append((order, result))
    except Exception as exc:  # the commit itself failed: nothing of this chunk is in
        shown = failure_messages(exc, inbox_id)[1]
        done = [(order, DoorResult(inbox_id, InboxStatus.failed.value, error=shown)) for order in chunk]
    for order, result in done:
        if result.ok:
            outcomes[result.outcome or "unchanged"] += 1
        else:
            report.ingest_failures += 1
            message = f"order {order.external_id}: {result.error}"
            report.errors.append(CsvError(lines.get(order.external_id), message))


async def _finish(db: Database, report: CsvImportReport, status: InboxStatus) -> CsvImportReport:
    report.status = status.value
    note = None
    if report.errors:
        listed = "; ".join(str(e) for e in report.errors[:20])
        more = f"; and {len(report.errors) - 20} more" if len(report.errors) > 20 else ""
        note = f"{report.summary()}: {listed}{more}"[:4000]
    async with db.control_session() as session:
        await mark(session, report.inbox_id, status, note)
    return report


def _first_lines(text: str, mapping: Mapping[str, str]) -> dict[str, int]:
    """Order id -> the file line of its first row (header = line 1), counted as ``parse_csv`` does."""
    column = mapping.get("order_id", "order_id")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    if column.startswith("="):
        return {column[1:]: 2}
    index = header.index(column) if column in header else None
    out: dict[str, int] = {}
    end_of_previous = reader.line_num
    for row in reader:
        line_no, end_of_previous = end_of_previous + 1, reader.line_num
        if index is not None and index < len(row) and row[index].strip():
            out.setdefault(row[index].strip(), line_no)
    return out


def describe(report: CsvImportReport) -> list[str]:
    """Human lines for the CLI: the bad lines, then the summary."""
    return [str(e) for e in report.errors] + [report.summary()]
