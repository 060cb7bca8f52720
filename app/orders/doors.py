"""The shared path behind every ingest door (webhook, GraphQL bulk, CSV): raw payload → inbox → adapter →
``orders.ingest``.

The raw bytes are committed to the inbox *before* anything parses them, in a transaction of their own,
so a payload survives whatever happens next. Parsing and ingest then run in one tenant transaction that
also marks the inbox row processed: either the order and the mark are both committed, or neither is and
the row is marked failed (with the error) in a separate transaction. A failed or never-finished row is
replayed through exactly the same code, so a fix (a reactivated channel, a corrected mapping) is applied
by replaying, and a replay of an order already ingested is harmless (ingest is idempotent).

Functions here never raise for payload problems: they return a :class:`DoorResult` saying what happened.
They raise ``UserError`` only for the caller's own mistakes (unknown channel, too many payloads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import inbox
from app.channels.adapters import UnknownPlatformError, get_adapter
from app.channels.adapters._payload import decode
from app.channels.adapters.base import header
from app.channels.adapters.generic import CANCEL_FORMAT, ORDER_FORMAT, REFUND_FORMAT, GenericAdapter
from app.channels.models import Channel
from app.channels.normalized import AdapterError, NormalizedOrder
from app.coalesce import Coalescer
from app.db import Database, TenantRef, is_transient
from app.errors import NotFound, UserError
from app.inbox import InboxStatus, mark, mark_many
from app.orders.arrivals import channel_source
from app.orders.batch import ingest_batch
from app.orders.ingest import ingest, ingest_cancel

log = logging.getLogger(__name__)

MAX_BODY = 5 * 1024 * 1024  # one payload (webhook body, bulk item); bigger ones are refused, not stored
MAX_BATCH = 1000  # payloads per ingest_many call
FAST_CHUNK = 200  # orders per set-based transaction (orders.batch)
KINDS = ("order", "cancel", "refund")
EVENT_HEADER = "x-oms-event"  # order | cancel | refund, for platforms whose payload does not say
_FORMATS = {ORDER_FORMAT: "order", CANCEL_FORMAT: "cancel", REFUND_FORMAT: "refund"}
# Shopify order topics all deliver the Order resource (orders/cancelled carries cancelled_at).
_SHOPIFY_TOPICS = {
    **dict.fromkeys(
        ("orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled"), "order"
    ),
    "orders/partially_fulfilled": "order",
    "refunds/create": "refund",
}
INTERNAL = "internal error while processing; the payload is stored and can be replayed"


@dataclass(frozen=True)
class ChannelRef:
    """A channel of a tenant: where a payload is going (the tenant comes from the credential)."""

    tenant: TenantRef
    channel_id: int


@dataclass(frozen=True)
class DoorResult:
    """What became of one payload. ``status`` is the inbox row's (processed | failed | rejected);
    ``outcome`` is ingest's (created | updated | unchanged | stale | cancelled) or ``refund_stored`` /
    ``ignored`` (explained in ``note``); ``error`` is safe to show to the sender (internal details stay
    in the inbox row)."""

    inbox_id: int | None
    status: str
    outcome: str | None = None
    order_id: int | None = None
    number: str | None = None
    order_status: str | None = None
    error: str | None = None
    kind: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == InboxStatus.processed.value


async def resolve_tenant(db: Database, tenant: TenantRef | int) -> TenantRef:
    """A TenantRef as given, or looked up by tenant id (callers that only hold the id)."""
    if isinstance(tenant, TenantRef):
        return tenant
    from tenants.auth import tenant_cache

    found = await tenant_cache.get(db, tenant)
    if found is None:
        raise NotFound("tenant")
    return found[0]


def detect_kind(channel: Channel, raw: bytes | Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """order | cancel | refund, or None for a payload that carries no order (kept, marked ignored).

    Shopify names the topic in ``X-Shopify-Topic``; the generic format names itself in ``format``; every
    other platform says it with ``X-OMS-Event`` (the webhook's ``?kind=`` is stored as that header, so
    a replay decides the same way), defaulting to an order.
    """
    topic = header(headers, "x-shopify-topic")
    if channel.platform == "shopify" and topic:
        return _SHOPIFY_TOPICS.get(topic.strip().lower())
    if isinstance(raw, Mapping) and isinstance(raw.get("format"), str) and raw["format"] in _FORMATS:
        return _FORMATS[raw["format"]]
    given = (header(headers, EVENT_HEADER) or "order").strip().lower()
    if given not in KINDS:
        raise AdapterError("X-OMS-Event", f"{given!r} is not one of {', '.join(KINDS)}")
    return given


def with_kind(headers: Mapping[str, str] | None, kind: str | None) -> dict[str, str]:
    """Headers to store: the caller's ``kind`` becomes ``X-OMS-Event`` unless the sender set one."""
    out = dict(headers or {})
    if kind and kind != "order" and header(out, EVENT_HEADER) is None:
        out[EVENT_HEADER] = kind
    return out


async def _process(
    session: AsyncSession,
    channel: Channel,
    body: bytes,
    headers: Mapping[str, str],
    inbox_id: int,
    actor: str,
) -> DoorResult:
    """Parse and ingest one stored payload in the caller's transaction (the inbox mark is the caller's)."""
    if not channel.active:
        raise UserError(
            "CHANNEL_INACTIVE", f"channel {channel.code} is inactive: reactivate it, then replay", "channel"
        )
    adapter = get_adapter(channel.platform)
    raw: bytes | Mapping[str, Any] = decode(body) if isinstance(adapter, GenericAdapter) else body
    kind = detect_kind(channel, raw, headers)
    if kind is None:
        note = f"ignored: topic {header(headers, 'x-shopify-topic')!r} carries no order"
        return DoorResult(inbox_id, InboxStatus.processed.value, "ignored", note=note)
    if kind == "refund":
        refund = adapter.parse_refund(raw)
        note = (
            f"refund {refund.external_refund_id} of order {refund.external_id} stored;"
            " applying refunds comes with returns"
        )
        return DoorResult(inbox_id, InboxStatus.processed.value, "refund_stored", note=note, kind=kind)
    if kind == "cancel":
        result = await ingest_cancel(
            session, channel, adapter.parse_cancel(raw), inbox_id=inbox_id, actor=actor
        )
    else:
        result = await ingest(session, channel, adapter.parse_order(raw), inbox_id=inbox_id, actor=actor)
    return DoorResult(
        inbox_id,
        InboxStatus.processed.value,
        result.outcome,
        result.order_id,
        result.number,
        result.status,
        kind=kind,
    )


def failure_messages(exc: BaseException, inbox_id: int | None) -> tuple[str, str]:
    """(error to store in the inbox, error to show the sender)."""
    if isinstance(exc, AdapterError | UnknownPlatformError):
        return str(exc), str(exc)
    if isinstance(exc, UserError):
        return exc.message, exc.message
    log.exception("ingest of inbox row %s failed", inbox_id)  # the details go to the logs only:
    # the inbox row is shown to the tenant, and exception text can carry SQL.
    return f"internal error ({type(exc).__name__}); details in the logs for inbox row {inbox_id}", INTERNAL


async def run_stored(
    db: Database, ref: ChannelRef, inbox_id: int, body: bytes, headers: Mapping[str, str], actor: str
) -> DoorResult:
    """Process a stored payload in one tenant transaction (retried when a concurrent twin wins a race);
    on failure, mark the row failed in a transaction of its own."""
    for attempt in range(3):
        try:
            async with db.tenant_session(ref.tenant) as session:
                channel = await session.get(Channel, ref.channel_id)
                if channel is None:
                    raise NotFound("channel", "channel")
                result = await _process(session, channel, body, headers, inbox_id, actor)
                await mark(session, inbox_id, InboxStatus.processed, result.note)
                return result
        except Exception as exc:
            if attempt < 2 and is_transient(exc):
                continue
            stored, shown = failure_messages(exc, inbox_id)
            break
    async with db.control_session() as session:
        await mark(session, inbox_id, InboxStatus.failed, stored)
    return DoorResult(inbox_id, InboxStatus.failed.value, error=shown)


async def receive_channel_payload(
    db: Database,
    channel_ref: ChannelRef,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    kind: str = "order",
    actor: str = "webhook",
) -> DoorResult:
    """Store an authenticated payload for a channel, then process it; never raises for payload problems."""
    async with db.control_session() as session:
        row = inbox.row(
            source=channel_source(channel_ref.channel_id),
            body=body,
            headers=with_kind(headers, kind),
            tenant_id=channel_ref.tenant.id,
        )
        (inbox_id,) = await inbox.store_many(session, [row])
    return await process_stored(db, channel_ref, inbox_id, body, row["headers"], actor)


async def process_stored(
    db: Database, ref: ChannelRef, inbox_id: int, body: bytes, headers: dict[str, str], actor: str
) -> DoorResult:
    """Process a stored payload; payloads of one channel stored while an ingest of that channel runs are
    ingested together next (``ingest_fast``, then one by one for what it leaves), so on a busy channel
    each webhook costs a share of one batch. The result is the one ``run_stored`` would give."""
    return await _together.submit((db, ref, actor), (inbox_id, body, headers))


def process_later(
    db: Database, ref: ChannelRef, inbox_id: int, body: bytes, headers: dict[str, str], actor: str
) -> None:
    """Process a stored payload after its sender has been answered (a webhook at ``?ack=stored``). Should
    this process die first, the row is still ``received`` and the inbox sweep (``app.inbox_replay``)
    replays it."""

    async def run() -> None:
        try:
            await process_stored(db, ref, inbox_id, body, headers, actor)
        except Exception:  # process_stored does not raise for payload problems: this is a bug or outage
            log.exception("background ingest of inbox row %s failed; the inbox sweep replays it", inbox_id)

    task = asyncio.get_running_loop().create_task(run())
    _later.add(task)
    task.add_done_callback(_later.discard)


async def settle() -> None:
    """Wait for this event loop's background ingests still running (shut-down; tests)."""
    loop = asyncio.get_running_loop()
    while running := [task for task in _later if task.get_loop() is loop]:
        await asyncio.gather(*running, return_exceptions=True)


_later: set[asyncio.Task] = set()


async def _run_together(
    key: tuple[Database, ChannelRef, str], batch: list[tuple[int, bytes, dict[str, str]]]
) -> list[DoorResult | BaseException]:
    db, ref, actor = key
    fast: dict[int, DoorResult] = {}
    try:
        fast = await ingest_fast(db, ref.tenant, ref.channel_id, batch, actor)
    except Exception:
        log.exception("set-based ingest failed; taking the payloads one by one")
    results: list[DoorResult | BaseException] = []
    for k, (inbox_id, body, headers) in enumerate(batch):
        try:
            results.append(fast.get(k) or await run_stored(db, ref, inbox_id, body, headers, actor))
        except Exception as exc:  # run_stored does not raise for payload problems
            results.append(exc)
    return results


_together: Coalescer[tuple[int, bytes, dict[str, str]], DoorResult] = Coalescer(_run_together, FAST_CHUNK)


async def ingest_many(
    db: Database,
    tenant_ref: TenantRef | int,
    channel_id: int,
    payloads: list[bytes] | list[str],
    *,
    kind: str = "order",
    actor: str = "api",
) -> list[DoorResult]:
    """Bulk door (GraphQL): all payloads stored in one insert, then each ingested in a transaction of its
    own, so one bad order does not fail the others.
    ``kind`` (order | cancel | refund) is for platforms whose payloads do not say it themselves."""
    ref = await resolve_tenant(db, tenant_ref)
    if len(payloads) > MAX_BATCH:
        raise UserError("TOO_MANY_PAYLOADS", f"at most {MAX_BATCH} payloads per call", "payloads")
    bodies = [p.encode() if isinstance(p, str) else bytes(p) for p in payloads]
    for index, body in enumerate(bodies):
        if len(body) > MAX_BODY:
            raise UserError(
                "PAYLOAD_TOO_LARGE", f"payload is over {MAX_BODY} bytes", ["payloads", str(index)]
            )
    if not bodies:
        return []
    async with db.tenant_session(ref) as session:
        if await session.get(Channel, channel_id) is None:
            raise NotFound("channel", "channelId")
    source, headers = channel_source(channel_id), with_kind({}, kind)
    rows = [inbox.row(source=source, body=b, headers=headers, tenant_id=ref.id) for b in bodies]
    async with db.control_session() as session:
        ids = await inbox.store_many(session, rows)
    fast = await ingest_fast(
        db, ref, channel_id, [(i, b, headers) for i, b in zip(ids, bodies, strict=True)], actor
    )
    return [
        fast.get(k) or await _ingest_stored(db, ref, channel_id, i, b, headers, actor)
        for k, (i, b) in enumerate(zip(ids, bodies, strict=True))
    ]


async def ingest_fast(
    db: Database,
    ref: TenantRef,
    channel_id: int,
    stored: list[tuple[int, bytes, Mapping[str, str]]],
    actor: str,
) -> dict[int, DoorResult]:
    """The plain new orders among stored payloads ``(inbox id, body, headers)``, created set-based
    (``orders.batch``) a chunk per transaction, their inbox rows marked in it. Returns their results by
    position; the caller takes the rest one by one (a payload that does not parse fails there)."""
    out: dict[int, DoorResult] = {}
    for start in range(0, len(stored), FAST_CHUNK):
        chunk = stored[start : start + FAST_CHUNK]
        try:
            async with db.tenant_session(ref) as session:
                channel = await session.get(Channel, channel_id)
                if channel is None or not channel.active:
                    return out
                parsed = [
                    (k, _plain_order(channel, body, headers)) for k, (_, body, headers) in enumerate(chunk)
                ]
                items = [(norm, chunk[k][0]) for k, norm in parsed if norm is not None]
                at = [start + k for k, norm in parsed if norm is not None]
                results, _ = await ingest_batch(session, channel, items, actor=actor)
                await mark_many(session, [items[j][1] for j in results], InboxStatus.processed)
        except Exception:
            log.exception("set-based ingest of %s payloads failed; taking them one by one", len(chunk))
            continue
        for j, r in results.items():
            out[at[j]] = DoorResult(
                items[j][1],
                InboxStatus.processed.value,
                r.outcome,
                r.order_id,
                r.number,
                r.status,
                kind="order",
            )
    return out


def _plain_order(channel: Channel, body: bytes, headers: Mapping[str, str]) -> NormalizedOrder | None:
    """The order a payload carries, or None for anything else (cancel, refund, a parse error)."""
    try:
        adapter = get_adapter(channel.platform)
        raw: bytes | Mapping[str, Any] = decode(body) if isinstance(adapter, GenericAdapter) else body
        if detect_kind(channel, raw, headers) != "order":
            return None
        return adapter.parse_order(raw)
    except Exception:  # the one-order path stores the error with the inbox row
        return None


async def _ingest_stored(
    db: Database,
    ref: TenantRef,
    channel_id: int,
    inbox_id: int,
    body: bytes,
    headers: dict[str, str],
    actor: str,
) -> DoorResult:
    """One stored payload in its own transaction, its inbox row marked in the same one. Orders of one call
    are not batched into one transaction on purpose: each order locks its materials' stock rows in id
    order, but a transaction holding several orders would take them in no order and deadlock against a
    concurrent call (and hold hot stock rows for the whole batch)."""
    try:
        async with db.tenant_session(ref) as session:
            result, error = await _process_nested(session, channel_id, inbox_id, body, headers, actor)
            await mark(session, inbox_id, InboxStatus(result.status), error)
        return result
    except Exception as exc:
        stored, shown = failure_messages(exc, inbox_id)
        failed = DoorResult(inbox_id, InboxStatus.failed.value, error=shown)
        async with db.control_session() as session:
            await mark(session, inbox_id, InboxStatus.failed, stored)
        return failed


async def _process_nested(
    session: AsyncSession, channel_id: int, inbox_id: int, body: bytes, headers: dict[str, str], actor: str
) -> tuple[DoorResult, str | None]:
    return await in_savepoint(
        session, channel_id, inbox_id, lambda ch: _process(session, ch, body, headers, inbox_id, actor)
    )


async def in_savepoint(
    session: AsyncSession, channel_id: int, inbox_id: int, work: Callable[[Channel], Awaitable[DoorResult]]
) -> tuple[DoorResult, str | None]:
    """Run ``work(channel)`` in a savepoint of the caller's transaction, retried once when a concurrent
    twin wins a race; a failure rolls back only this savepoint. Returns (result, inbox error column)."""
    for attempt in range(2):
        channel = await session.get(Channel, channel_id)  # refreshed if a rolled-back savepoint expired it
        try:
            if channel is None:
                raise NotFound("channel", "channel")
            async with session.begin_nested():
                result = await work(channel)
            return result, result.note
        except Exception as exc:
            if attempt == 0 and is_transient(exc):
                continue
            stored, shown = failure_messages(exc, inbox_id)
            return DoorResult(inbox_id, InboxStatus.failed.value, error=shown), stored
    raise AssertionError("unreachable")
