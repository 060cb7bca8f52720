"""Order ingest against real PostgreSQL: platform fixtures in, unified orders out, idempotent under
concurrency, out-of-order payloads ignored, updates, unknown items, cancellations, stock states and
one customer across channels."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.channels.adapters import get_adapter
from app.channels.models import Channel
from app.customers.models import Customer, CustomerIdentity
from app.db import control_session, tenant_session
from app.errors import NotFound, UserError
from app.inventory.models import Reservation, ReservationStatus
from app.orders import service
from app.orders.ingest import ingest_cancel
from app.orders.models import Order, OrderLine, OrderLineMaterial
from billing.models import UsageEvent
from tests.factories import make_channel, make_sellable, tenant_ref
from tests.ingest_support import (
    events_of,
    holds_of,
    ingest_one,
    line_of,
    make_presale,
    order_row,
    reserved,
    route_jobs,
    web_order,
)

FIXTURES = Path(__file__).parent / "fixtures" / "channels"


# --- platform fixtures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "platform"),
    [
        ("shopify", "shopify"),
        ("taobao", "taobao"),
        ("tmall", "tmall"),
        ("jd", "jd"),
        ("douyin", "douyin"),
        ("amazon", "amazon"),
        ("generic", "web"),
    ],
)
async def test_fixture_becomes_a_unified_order_with_stock_reserved(tenant_a, fixture, platform):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, platform)
    async with tenant_session(ref) as session:  # no service sets it yet: the fallback carrier
        channel = await session.get(Channel, channel.id)
        channel.default_carrier = "SF"
    norm = get_adapter(platform).parse_order((FIXTURES / fixture / "order.json").read_bytes())
    sellables = [
        await make_sellable(
            ref,
            channel.id,
            stock=10,
            item_id=line.external_item_id or f"ITEM-{line.external_sku_id}",  # generic: SKU-only lines
            sku_id=line.external_sku_id,
        )
        for line in norm.lines
    ]
    result = await ingest_one(ref, channel, norm, inbox_id=None)
    assert result.outcome == "created"
    assert result.status == "reserved", await holds_of(ref, result.order_id)
    assert result.number == f"SO{result.order_id:08d}"

    async with tenant_session(ref) as session:
        order = await session.get(Order, result.order_id)
        lines = (
            await session.scalars(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
            )
        ).all()
        materials = (
            await session.scalars(select(OrderLineMaterial).where(OrderLineMaterial.order_id == order.id))
        ).all()
        customer = await session.get(Customer, order.customer_id)
        reservations = (
            await session.scalars(select(Reservation).where(Reservation.reference == f"order:{order.id}"))
        ).all()
    assert (order.channel_id, order.external_id) == (channel.id, norm.external_id)
    assert (order.currency, order.total, order.paid) == (norm.currency, norm.amounts.total, norm.amounts.paid)
    assert (order.subtotal, order.discount, order.shipping, order.tax) == (
        norm.amounts.subtotal,
        norm.amounts.discount,
        norm.amounts.shipping,
        norm.amounts.tax,
    )
    assert order.channel_status == "paid" and order.placed_at == norm.placed_at
    assert order.requested_carrier == (norm.requested_carrier or "SF")[:60]
    assert order.address["city"] == norm.address.city and order.address["street"] == norm.address.street
    if norm.buyer.platform_buyer_id:
        assert order.buyer["platform_buyer_id"] == norm.buyer.platform_buyer_id
    assert norm.address.city.lower() in order.search_text
    assert len(order.fingerprint) == 64 and customer.order_count == 1
    assert [line.product_id for line in lines] == [s.product_id for s in sellables]
    assert [line.is_gift for line in lines] == [line.is_gift for line in norm.lines]
    assert all(line.kind == "single" for line in lines)
    assert sorted((m.material_id, m.quantity) for m in materials) == sorted(
        (s.material_id, line.quantity) for s, line in zip(sellables, norm.lines, strict=True)
    )
    assert sorted((r.material_id, r.quantity, r.status) for r in reservations) == sorted(
        (s.material_id, line.quantity, ReservationStatus.active)
        for s, line in zip(sellables, norm.lines, strict=True)
    )
    for s, line in zip(sellables, norm.lines, strict=True):
        assert await reserved(ref, s.material_id) == line.quantity
    assert await route_jobs(ref.id, order.id) == 1
    kinds = [(e.kind, e.to_status) for e in await events_of(ref, order.id)]
    assert kinds == [("received", "received"), ("status", "reserved")]


async def test_bundles_explode_and_virtual_products_take_no_stock(tenant_a):
    from app.catalog import listings
    from app.catalog import service as catalog

    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    a = await make_sellable(ref, channel.id, stock=10)
    b = await make_sellable(ref, channel.id, stock=10)
    card = await make_sellable(ref, channel.id, stock=0, kind="virtual")
    async with tenant_session(ref) as session:
        kit = await catalog.create_product(
            session,
            {"code": "kit-1", "name": "Kit", "kind": "bundle"},
            [(a.material_id, 2), (b.material_id, 1)],
        )
        await listings.create_listing(
            session, channel_id=channel.id, product_id=kit.id, external_item_id="KIT"
        )
    norm = web_order("B-1", [{"item_id": "KIT", "quantity": 3}, line_of(card)])
    result = await ingest_one(ref, channel, norm)
    assert result.status == "reserved"
    async with tenant_session(ref) as session:
        rows = (
            await session.execute(
                select(OrderLine.kind, OrderLine.id).where(OrderLine.order_id == result.order_id)
            )
        ).all()
        materials = (
            await session.execute(
                select(OrderLineMaterial.material_id, OrderLineMaterial.quantity).where(
                    OrderLineMaterial.order_id == result.order_id
                )
            )
        ).all()
    assert sorted(kind for kind, _ in rows) == ["bundle", "virtual"]
    assert sorted(materials) == sorted([(a.material_id, 6), (b.material_id, 3)])
    assert await reserved(ref, a.material_id) == 6 and await reserved(ref, b.material_id) == 3


# --- idempotency and ordering --------------------------------------------------------------------------


async def test_same_payload_ten_times_concurrently_is_one_order(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    norm = web_order("DUP-1", [line_of(s, 2)])
    results = await asyncio.gather(*(ingest_one(ref, channel, norm) for _ in range(10)))
    assert sorted(r.outcome for r in results) == ["created"] + ["unchanged"] * 9
    assert len({r.order_id for r in results}) == 1
    order_id = results[0].order_id
    async with tenant_session(ref) as session:
        orders = await session.scalar(select(func.count()).select_from(Order))
        reservations = await session.scalar(
            select(func.count()).select_from(Reservation).where(Reservation.reference == f"order:{order_id}")
        )
        customers = await session.scalar(select(func.count()).select_from(Customer))
    async with control_session() as session:
        usage = await session.scalar(
            select(func.count())
            .select_from(UsageEvent)
            .where(UsageEvent.tenant_id == ref.id, UsageEvent.kind == "order")
        )
    assert (orders, reservations, customers, usage) == (1, 1, 1, 1)
    assert await reserved(ref, s.material_id) == 2
    assert await route_jobs(ref.id, order_id) == 1


async def test_older_payload_is_stale_and_changes_nothing(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    newer = web_order("OOO-1", [line_of(s)], updated_at="2026-11-01T12:00:00+08:00", street="新街 8 号 1 栋")
    older = web_order(
        "OOO-1", [line_of(s, 5)], updated_at="2026-11-01T11:00:00+08:00", street="旧街 1 号 2 栋"
    )
    first = await ingest_one(ref, channel, newer)
    stale = await ingest_one(ref, channel, older)
    again = await ingest_one(ref, channel, newer)
    assert (first.outcome, stale.outcome, again.outcome) == ("created", "stale", "unchanged")
    order = await order_row(ref, first.order_id)
    assert order.address["street"] == "新街 8 号 1 栋" and order.external_updated_at == newer.updated_at
    assert await reserved(ref, s.material_id) == 1
    assert [e.kind for e in await events_of(ref, order.id)] == ["received", "status", "stale"]


async def test_newer_payload_updates_address_and_records_what_changed(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    created = await ingest_one(ref, channel, web_order("UPD-1", [line_of(s)], street="老地址 1 号 1 单元"))
    before = await order_row(ref, created.order_id)
    update = web_order(
        "UPD-1", [line_of(s)], street="新地址 99 号 2 单元", updated_at="2026-11-01T13:00:00+08:00"
    )
    result = await ingest_one(ref, channel, update, inbox_id=77)
    assert (result.outcome, result.status) == ("updated", "reserved")
    order = await order_row(ref, created.order_id)
    assert order.address["street"] == "新地址 99 号 2 单元" and order.inbox_id == 77
    assert order.fingerprint != before.fingerprint and "新地址" in order.search_text
    event = (await events_of(ref, order.id))[-1]
    assert event.kind == "updated"
    assert event.details["changed"]["address"]["after"]["street"] == "新地址 99 号 2 单元"
    assert await reserved(ref, s.material_id) == 1  # same lines: the reservation stands


async def test_changed_lines_release_and_reserve_again(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    t = await make_sellable(ref, channel.id, stock=10)
    created = await ingest_one(ref, channel, web_order("LN-1", [line_of(s, 2)]))
    assert created.status == "reserved" and await reserved(ref, s.material_id) == 2
    changed = web_order("LN-1", [line_of(s, 1), line_of(t, 3)], updated_at="2026-11-01T14:00:00+08:00")
    result = await ingest_one(ref, channel, changed)
    assert (result.outcome, result.status) == ("updated", "reserved")
    assert await reserved(ref, s.material_id) == 1 and await reserved(ref, t.material_id) == 3
    statuses = [e.to_status for e in await events_of(ref, created.order_id) if e.kind == "status"]
    assert statuses == ["reserved", "on_hold", "reserved"]
    assert await route_jobs(ref.id, created.order_id) == 2  # routed again with the new lines


async def test_unpaid_order_waits_then_payment_reserves(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    unpaid = await ingest_one(ref, channel, web_order("PAY-1", [line_of(s)], status="pending_payment"))
    assert unpaid.status == "received" and await reserved(ref, s.material_id) == 0
    paid = await ingest_one(
        ref, channel, web_order("PAY-1", [line_of(s)], updated_at="2026-11-01T10:30:00+08:00")
    )
    assert (paid.outcome, paid.status) == ("updated", "reserved")
    assert await reserved(ref, s.material_id) == 1


async def test_platform_shipped_is_recorded_but_not_acted_on(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    created = await ingest_one(ref, channel, web_order("SHIP-1", [line_of(s)]))
    shipped = web_order("SHIP-1", [line_of(s)], status="shipped", updated_at="2026-11-02T10:00:00+08:00")
    result = await ingest_one(ref, channel, shipped)
    assert (result.outcome, result.status) == ("updated", "reserved")
    order = await order_row(ref, created.order_id)
    assert order.channel_status == "shipped"
    assert (await events_of(ref, order.id))[-1].kind == "channel_status"


# --- holds, stock states -------------------------------------------------------------------------------


async def test_unknown_item_puts_the_order_on_hold_with_the_item_named(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    norm = web_order("UNK-1", [line_of(s), {"item_id": "NOPE-1", "sku_id": "NOPE-RED"}])
    result = await ingest_one(ref, channel, norm)
    assert result.status == "on_hold"
    [hold] = await holds_of(ref, result.order_id)
    assert hold.code == "unknown_item" and "NOPE-1" in hold.reason and "NOPE-RED" in hold.reason
    async with tenant_session(ref) as session:
        products = (
            await session.scalars(
                select(OrderLine.product_id)
                .where(OrderLine.order_id == result.order_id)
                .order_by(OrderLine.id)
            )
        ).all()
    assert products == [s.product_id, None]
    assert await reserved(ref, s.material_id) == 0
    assert await route_jobs(ref.id, result.order_id) == 0


async def test_releasing_an_unknown_item_hold_needs_the_listing_then_reserves_it(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    listed = await make_sellable(ref, channel.id, stock=10)
    result = await ingest_one(ref, channel, web_order("UNK-2", [{"item_id": "LATE-1", "sku_id": "LATE-RED"}]))
    assert result.status == "on_hold"
    with pytest.raises(UserError) as refused:  # raised out of the transaction: it rolls back
        async with tenant_session(ref) as session:
            await service.release_holds(session, result.order_id, actor="ops@example.com")
    assert refused.value.code == "UNKNOWN_ITEMS"
    assert [h.code for h in await holds_of(ref, result.order_id)] == ["unknown_item"]

    late = await make_sellable(ref, channel.id, stock=5, item_id="LATE-1", sku_id="LATE-RED")
    async with tenant_session(ref) as session:
        order = await service.release_holds(session, result.order_id, actor="ops@example.com")
        assert order.status == "reserved"
    assert await reserved(ref, late.material_id) == 1
    assert await reserved(ref, listed.material_id) == 0
    assert await route_jobs(ref.id, result.order_id) == 1


async def test_not_enough_stock_awaits_stock_and_presale_products_go_presale(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    scarce = await make_sellable(ref, channel.id, stock=1)
    presale = await make_presale(ref, channel.id)
    short = await ingest_one(ref, channel, web_order("STK-1", [line_of(scarce, 2)]))
    assert short.status == "awaiting_stock" and await reserved(ref, scarce.material_id) == 0
    pre = await ingest_one(ref, channel, web_order("STK-2", [line_of(presale, 2)]))
    assert pre.status == "presale"
    async with tenant_session(ref) as session:
        line = await session.scalar(select(OrderLine).where(OrderLine.order_id == pre.order_id))
        row = await session.scalar(
            select(Reservation).where(Reservation.reference == f"order:{pre.order_id}")
        )
    assert line.presale and (row.quantity, row.backordered) == (2, 2)
    assert await route_jobs(ref.id, pre.order_id) == 1


# --- cancellation --------------------------------------------------------------------------------------


async def test_cancellation_payload_releases_stock(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    adapter = get_adapter("web")
    norm = adapter.parse_order((FIXTURES / "generic" / "order.json").read_bytes())
    sellables = [
        await make_sellable(
            ref,
            channel.id,
            stock=5,
            item_id=line.external_item_id or f"I-{line.external_sku_id}",
            sku_id=line.external_sku_id,
        )
        for line in norm.lines
    ]
    created = await ingest_one(ref, channel, norm)
    assert created.status == "reserved"
    assert [await reserved(ref, s.material_id) for s in sellables] == [line.quantity for line in norm.lines]
    cancel = adapter.parse_cancel((FIXTURES / "generic" / "cancel.json").read_bytes())
    async with tenant_session(ref) as session:
        result = await ingest_cancel(session, channel, cancel)
    assert (result.outcome, result.status) == ("cancelled", "cancelled")
    assert [await reserved(ref, s.material_id) for s in sellables] == [0] * len(sellables)
    async with tenant_session(ref) as session:
        again = await ingest_cancel(session, channel, cancel)
    assert again.outcome == "unchanged"
    last = [e for e in await events_of(ref, created.order_id) if e.kind == "status"][-1]
    assert last.to_status == "cancelled" and last.message == "顾客改变主意"


async def test_cancelled_status_in_an_order_payload_cancels(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=5)
    await ingest_one(ref, channel, web_order("CX-1", [line_of(s, 2)]))
    result = await ingest_one(
        ref,
        channel,
        web_order("CX-1", [line_of(s, 2)], status="cancelled", updated_at="2026-11-01T11:00:00+08:00"),
    )
    assert (result.outcome, result.status) == ("cancelled", "cancelled")
    assert await reserved(ref, s.material_id) == 0
    first_seen_cancelled = await ingest_one(ref, channel, web_order("CX-2", [line_of(s)], status="cancelled"))
    assert (first_seen_cancelled.outcome, first_seen_cancelled.status) == ("created", "cancelled")


async def test_cancel_for_an_unknown_order_is_not_found_so_the_inbox_keeps_it(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    cancel = get_adapter("web").parse_cancel((FIXTURES / "generic" / "cancel.json").read_bytes())
    with pytest.raises(NotFound):
        async with tenant_session(ref) as session:
            await ingest_cancel(session, channel, cancel)


# --- customers -----------------------------------------------------------------------------------------


async def test_one_customer_across_channels_and_none_across_tenants(tenant_a, tenant_b):
    ref = await tenant_ref(tenant_a.slug)
    web = await make_channel(ref, "web")
    shop = await make_channel(ref, "taobao")
    s = await make_sellable(ref, web.id, stock=10)
    t = await make_sellable(ref, shop.id, stock=10)
    first = await ingest_one(ref, web, web_order("C-1", [line_of(s)], phone="+86 135-0123-4567"))
    second = await ingest_one(
        ref,
        shop,
        dataclasses.replace(web_order("C-2", [line_of(t)], phone="13501234567"), channel_platform="taobao"),
    )
    a1, a2 = await order_row(ref, first.order_id), await order_row(ref, second.order_id)
    assert a1.customer_id == a2.customer_id
    async with tenant_session(ref) as session:
        customer = await session.get(Customer, a1.customer_id)
        kinds = sorted(
            (
                await session.scalars(
                    select(CustomerIdentity.kind).where(CustomerIdentity.customer_id == customer.id)
                )
            ).all()
        )
    assert customer.order_count == 2 and customer.phone_masked == "135****4567"
    assert kinds == ["buyer", "buyer", "phone"]  # web:u-C-1, web:u-C-2 (new identity attached), one phone

    other = await tenant_ref(tenant_b.slug)
    web_b = await make_channel(other, "web")
    u = await make_sellable(other, web_b.id, stock=10)
    b1 = await ingest_one(other, web_b, web_order("C-1", [line_of(u)], phone="13501234567"))
    async with tenant_session(other) as session:
        hashes_b = set((await session.scalars(select(CustomerIdentity.value_hash))).all())
        count_b = await session.scalar(select(func.count()).select_from(Customer))
    async with tenant_session(ref) as session:
        hashes_a = set((await session.scalars(select(CustomerIdentity.value_hash))).all())
    assert b1.outcome == "created" and count_b == 1
    assert not hashes_a & hashes_b  # the same phone hashes differently per tenant


async def test_identities_of_two_customers_keep_the_oldest(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    one = await ingest_one(ref, channel, web_order("K-1", [line_of(s)], phone="13900000001", buyer_id="x1"))
    two = await ingest_one(ref, channel, web_order("K-2", [line_of(s)], phone="13900000002", buyer_id="x2"))
    both = await ingest_one(ref, channel, web_order("K-3", [line_of(s)], phone="13900000002", buyer_id="x1"))
    c1, c2, c3 = [(await order_row(ref, r.order_id)).customer_id for r in (one, two, both)]
    assert c1 != c2 and c3 == min(c1, c2)
    async with tenant_session(ref) as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 2  # nothing merged


async def test_concurrent_orders_of_a_new_customer_make_one_customer(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=50)
    phone = "1370000" + str(secrets.randbelow(9000) + 1000)
    orders = [web_order(f"N-{i}", [line_of(s)], phone=phone) for i in range(6)]
    results = await asyncio.gather(*(ingest_one(ref, channel, o) for o in orders))
    async with tenant_session(ref) as session:
        ids = set(
            (
                await session.scalars(
                    select(Order.customer_id).where(Order.id.in_([r.order_id for r in results]))
                )
            ).all()
        )
        customer = await session.get(Customer, ids.pop())
        total = await session.scalar(select(func.count()).select_from(Customer))
    assert not ids and total == 1 and customer.order_count == 6


async def test_a_new_customer_that_lost_the_race_joins_the_winner_whatever_the_ids(tenant_a, monkeypatch):
    """Order B makes its customer first (the lower id) but order A claims the shared phone first and
    commits: B's customer must go, and B join A's, although A's id is the higher one."""
    from app.channels.normalized import Address, Buyer
    from app.customers import service as customers

    ref = await tenant_ref(tenant_a.slug)
    phone = "1380000" + str(secrets.randbelow(9000) + 1000)
    created, go_on = asyncio.Event(), asyncio.Event()
    attach = customers._attach

    async def paused_attach(session, customer_id, hashes):
        if any(k == "buyer" and session.info.get("paused") for k, _ in hashes):
            created.set()
            await go_on.wait()
        await attach(session, customer_id, hashes)

    monkeypatch.setattr(customers, "_attach", paused_attach)
    address = Address(name="王五", phone=phone, country="CN", city="上海市", street="世纪大道 1 号")

    async def order_b() -> int:
        async with tenant_session(ref) as session:
            session.info["paused"] = True
            buyer = Buyer(platform_buyer_id="b-late", phone=phone)
            return (await customers.resolve_customer(session, ref.id, buyer, address, "web")).id

    late = asyncio.create_task(order_b())
    await created.wait()  # B's customer exists (lower id); its identities are not written yet
    async with tenant_session(ref) as session:
        first = await customers.resolve_customer(
            session, ref.id, Buyer(platform_buyer_id="a", phone=phone), address, "web"
        )
    go_on.set()
    assert await late == first.id
    async with tenant_session(ref) as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1
        assert (await session.get(Customer, first.id)).order_count == 2


async def test_amounts_are_kept_exact(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=10)
    norm = web_order("AM-1", [line_of(s, 3, unit_price="33.33", discount="0.99")])
    result = await ingest_one(ref, channel, norm)
    order = await order_row(ref, result.order_id)
    assert order.subtotal == Decimal("99.99") and order.total == Decimal("99.00")
    assert order.placed_at + timedelta(0) == norm.placed_at
