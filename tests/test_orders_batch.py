"""The set-based ingest (``orders.batch``) writes what the one-order ``ingest`` writes.

The same payloads go through ``ingest`` one by one in tenant A and through ``doors.ingest_many`` (fast
path for the plain ones, ``ingest`` for the rest) in tenant B, both with the same catalog; every row
the two paths write is compared, keyed by what is the same in both tenants (external ids, SKU codes).
The mix covers both paths: bundles, virtual and gift lines, a buyer seen before, one buyer with two
orders, identities pointing at two customers, unknown items, unpaid and cancelled orders, an update,
a blacklisted phone, a scalper address, a possible duplicate, an automation on ``reserved``.
Then: short stock, concurrent calls, and a twin delivery racing the batch.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.channels.adapters import get_adapter
from app.channels.models import Channel
from app.customers.models import Customer
from app.db import TenantRef, get_db, tenant_session
from app.inbox import InboxMessage, InboxStatus
from app.inventory import ledger
from app.inventory.models import ChannelUsage, NetworkStock, Reservation, StockMovement
from app.orders import audit, automations, batch, doors
from app.orders.ingest import ingest
from app.orders.models import Order, OrderEvent, OrderHold, OrderLine, OrderLineMaterial, OrderStatus
from app.outbox import OutboxMessage
from billing.models import UsageEvent
from tests.factories import make_channel, make_location, make_sellable, tenant_ref

NOW = datetime(2026, 11, 11, 0, 5, tzinfo=UTC)
SKUS = {
    "A": "single",
    "B": "single",
    "KIT": "bundle",
    "CARD": "virtual",
    "BAG": "single",
}  # BAG lines come as gifts


async def shop(ref: TenantRef, stock: int = 100):
    """A generic channel, five listed products (SKU codes as in ``SKUS``) stocked at one warehouse,
    an automation on ``reserved`` and a blacklisted phone: the same in every tenant it is made in."""
    channel = await make_channel(ref, "web", code="web")
    location = await make_location(ref, "WH-1")
    materials = {}
    for sku, kind in SKUS.items():
        s = await make_sellable(ref, channel.id, stock=stock, location_id=location, kind=kind, sku_id=sku)
        materials[s.material_id] = sku
    async with tenant_session(ref) as session:
        await automations.create_automation(
            session, "late", on_status="reserved", action="cancel", after_minutes=60
        )
        await audit.add_blacklist(session, ref.id, "phone", "13900000666", "chargebacks")
    return channel, materials


def payload(external_id: str, lines, *, phone: str, buyer: str | None = None, street: str = "", **extra):
    at = (NOW + timedelta(seconds=len(external_id))).isoformat()
    body = {
        "format": "oms.order.v1",
        "id": external_id,
        "status": "paid",
        "placed_at": at,
        "paid_at": at,
        "updated_at": at,
        "currency": "CNY",
        "buyer": {"id": buyer or f"u-{external_id}", "name": f"Buyer {buyer or external_id}", "phone": phone},
        "shipping_address": {
            "name": f"Buyer {external_id}",
            "phone": phone,
            "country": "CN",
            "province": "上海市",
            "city": "上海市",
            "district": "浦东新区",
            "street": street or f"世纪大道 {external_id} 号",
        },
        "lines": [
            {
                "id": str(i + 1),
                "sku_id": sku,
                "title": f"T {sku}",
                "quantity": qty,
                "unit_price": "0" if sku == "BAG" else "10.00",
                "is_gift": sku == "BAG",
            }
            for i, (sku, qty) in enumerate(lines)
        ],
        "shipping": "0.00",
    }
    body.update(extra)
    return body


def mix() -> tuple[list[dict], list[dict]]:
    """(orders ingested before, in both tenants), (the batch)."""
    before = [
        payload("OLD-1", [("A", 1)], phone="13900000001", buyer="known"),
        payload("UPD-1", [("A", 1)], phone="13900000002"),
        payload("TWO-1", [("B", 1)], phone="13900000003", buyer="two-a"),
        payload("TWO-2", [("B", 1)], phone="13900000004", buyer="two-b"),
    ]
    updated = payload("UPD-1", [("A", 2)], phone="13900000002")
    updated["updated_at"] = (NOW + timedelta(hours=1)).isoformat()
    both = payload("BOTH", [("A", 1)], phone="13900000004", buyer="two-a")  # two customers' identities
    unpaid = payload("UNPAID", [("A", 1)], phone="13900000010", status="pending_payment")
    gone = payload("GONE", [("A", 1)], phone="13900000011", status="cancelled")
    batch_ = [
        payload("P-1", [("A", 1)], phone="13900000101"),
        payload("P-2", [("A", 2), ("KIT", 1), ("CARD", 1), ("BAG", 1)], phone="13900000102"),
        payload("P-3", [("B", 3)], phone="13900000001", buyer="known"),  # a known customer
        payload("P-4", [("A", 1)], phone="13900000103", buyer="same"),  # one new buyer, two addresses
        payload("P-5", [("B", 1)], phone="13900000103", buyer="same", street="南京东路 1 号"),
        payload("P-6", [("A", 1)], phone="13900000104", buyer="dup"),  # same buyer and address twice
        payload("P-7", [("A", 1)], phone="13900000104", buyer="dup", street="世纪大道 P-6 号"),
        payload("P-8", [("A", 1), ("NOPE", 1)], phone="13900000105"),  # unknown item: held
        payload("P-9", [("A", 1)], phone="13900000666"),  # blacklisted: held
        both,
        unpaid,
        gone,
        updated,
        payload("P-1", [("A", 1)], phone="13900000101"),  # the same order twice in one call
        *(payload(f"S-{i}", [("B", 1)], phone=f"1390000020{i}", street="人民广场 8 号") for i in range(7)),
        payload("CARD-ONLY", [("CARD", 2)], phone="13900000301"),  # nothing to reserve
    ]
    return before, batch_


async def one_by_one(ref: TenantRef, channel_id: int, payloads: list[dict]) -> None:
    """The reference path: ``ingest``, one order per transaction."""
    adapter = get_adapter("web")
    for body in payloads:
        async with tenant_session(ref) as session:
            channel = await session.get(Channel, channel_id)
            await ingest(session, channel, adapter.parse_order(body), actor="api")


async def snapshot(ref: TenantRef, materials: dict[int, str]) -> dict:
    """Everything ingest writes, keyed by what two tenants share."""
    async with tenant_session(ref) as session:
        orders = {o.id: o for o in (await session.scalars(select(Order))).all()}
        ext = {i: o.external_id for i, o in orders.items()}
        customers = {c.id: c for c in (await session.scalars(select(Customer))).all()}
        by_customer = defaultdict(list)
        for o in orders.values():
            by_customer[o.customer_id].append(o.external_id)
        customer_key = {c: tuple(sorted(xs)) for c, xs in by_customer.items()}
        same = lambda attr: sorted(  # noqa: E731  (which orders share a hash)
            tuple(sorted(o.external_id for o in orders.values() if getattr(o, attr) == v))
            for v in {getattr(o, attr) for o in orders.values()}
        )
        lines = defaultdict(list)
        for x in (await session.scalars(select(OrderLine))).all():
            lines[ext[x.order_id]].append(
                (
                    x.external_line_id,
                    x.external_sku_id,
                    x.kind,
                    x.quantity,
                    str(x.total),
                    x.is_gift,
                    x.presale,
                )
            )
        line_materials = sorted(
            (ext[m.order_id], materials[m.material_id], m.quantity)
            for m in (await session.scalars(select(OrderLineMaterial))).all()
        )
        events = defaultdict(list)
        for e in (await session.scalars(select(OrderEvent).order_by(OrderEvent.id))).all():
            details = {k: v for k, v in e.details.items() if k != "inbox_id"}
            events[ext[e.order_id]].append((e.kind, e.from_status, e.to_status, e.actor, e.message, details))
        holds = sorted((ext[h.order_id], h.code) for h in (await session.scalars(select(OrderHold))).all())
        order_ref = {f"order:{i}": x for i, x in ext.items()}
        reservations = sorted(
            (order_ref[r.reference], materials[r.material_id], r.quantity, r.backordered, r.status.value)
            for r in (await session.scalars(select(Reservation))).all()
        )
        movements = sorted(
            (order_ref.get(m.reference, m.reference), m.kind.value, materials[m.material_id], m.d_reserved)
            for m in (await session.scalars(select(StockMovement))).all()
            if m.reference.startswith("order:")
        )
        network = {
            materials[n.material_id]: n.reserved for n in (await session.scalars(select(NetworkStock))).all()
        }
        usage = {
            materials[u.material_id]: u.reserved for u in (await session.scalars(select(ChannelUsage))).all()
        }
        mismatches = await ledger.check_ledger(session)
    async with get_db().control_session() as session:
        billed = await session.scalar(
            select(func.count()).select_from(UsageEvent).where(UsageEvent.tenant_id == ref.id)
        )
        jobs = sorted(
            (m.job, ext[m.kwargs["order_id"]])
            for m in (
                await session.scalars(select(OutboxMessage).where(OutboxMessage.tenant_id == ref.id))
            ).all()
            if "order_id" in m.kwargs
        )
    return {
        "orders": {
            o.external_id: (
                o.status.value,
                o.channel_status,
                str(o.total),
                o.version,
                o.search_text,
                o.requested_carrier,
                customer_key[o.customer_id],
            )
            for o in orders.values()
        },
        "fingerprints": same("fingerprint"),
        "addresses": same("address_hash"),
        "customers": sorted(
            (customer_key[c.id], c.order_count, c.name, c.phone_masked, c.email_masked, c.blacklisted)
            for c in customers.values()
            if c.id in customer_key
        ),
        "orphan_customers": len(set(customers) - set(customer_key)),
        "lines": {k: sorted(v) for k, v in lines.items()},
        "line_materials": line_materials,
        "events": dict(events),
        "holds": holds,
        "reservations": reservations,
        "movements": movements,
        "network_reserved": network,
        "channel_usage": usage,
        "ledger_mismatches": mismatches,
        "usage_events": billed,
        "jobs": jobs,
    }


async def test_the_fast_path_writes_what_ingest_writes(tenant_a, tenant_b):
    a, b = await tenant_ref(tenant_a.slug), await tenant_ref(tenant_b.slug)
    (channel_a, materials_a), (channel_b, materials_b) = await shop(a), await shop(b)
    before, payloads = mix()
    await one_by_one(a, channel_a.id, before)
    await one_by_one(b, channel_b.id, before)

    await one_by_one(a, channel_a.id, payloads)
    results = await doors.ingest_many(get_db(), b, channel_b.id, [json.dumps(p) for p in payloads])

    assert [r.status for r in results] == ["processed"] * len(payloads), [r.error for r in results]
    outcomes = [(p["id"], r.outcome) for p, r in zip(payloads, results, strict=True)]
    assert ("P-1", "created") in outcomes and ("P-1", "unchanged") in outcomes
    assert ("UPD-1", "updated") in outcomes
    expected, got = await snapshot(a, materials_a), await snapshot(b, materials_b)
    for key in expected:
        assert got[key] == expected[key], key
    # Both paths were taken, and the mix was what it says.
    assert expected["orders"]["P-2"][0] == "reserved" and expected["orders"]["UNPAID"][0] == "received"
    assert {("P-7", "duplicate"), ("P-9", "blacklist")} <= set(expected["holds"])
    assert "P-8" in {x for x, _ in expected["holds"]}
    assert ("S-5", "scalper") in expected["holds"] and ("S-4", "scalper") not in expected["holds"]
    assert expected["orders"]["P-4"][-1] == ("P-4", "P-5") and expected["ledger_mismatches"] == []
    async with tenant_session(b) as session:
        events = (await session.scalars(select(OrderEvent.actor).distinct())).all()
    assert set(events) == {"api"}
    async with get_db().control_session() as session:
        statuses = (
            await session.scalars(
                select(InboxMessage.status).where(InboxMessage.id.in_([r.inbox_id for r in results]))
            )
        ).all()
    assert set(statuses) == {InboxStatus.processed}


async def test_the_batch_takes_plain_orders_and_leaves_the_rest(tenant_a):
    """Which orders the fast path takes (so the comparison above really compares two paths)."""
    ref = await tenant_ref(tenant_a.slug)
    channel, _ = await shop(ref)
    before, payloads = mix()
    await one_by_one(ref, channel.id, before)
    adapter = get_adapter("web")
    items = [(adapter.parse_order(p), None) for p in payloads]
    async with tenant_session(ref) as session:
        channel = await session.get(Channel, channel.id)
        results, rest = await batch.ingest_batch(session, channel, items, actor="api")
    fast = {payloads[i]["id"] for i in results}
    slow = [payloads[i]["id"] for i in rest]
    assert fast == {"P-1", "P-2", "P-3", "P-4", "P-5", "P-6", "S-0", "S-1", "S-2", "S-3", "S-4", "CARD-ONLY"}
    assert slow == ["P-7", "P-8", "P-9", "BOTH", "UNPAID", "GONE", "UPD-1", "P-1", "S-5", "S-6"]


async def test_short_stock_sends_the_batch_the_one_order_way(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel, _ = await shop(ref, stock=5)
    payloads = [payload(f"SHORT-{i}", [("A", 2)], phone=f"1380000000{i}") for i in range(4)]
    results = await doors.ingest_many(get_db(), ref, channel.id, [json.dumps(p) for p in payloads])
    assert [r.order_status for r in results] == ["reserved", "reserved", "awaiting_stock", "awaiting_stock"]
    async with tenant_session(ref) as session:
        assert await ledger.check_ledger(session) == []


async def test_concurrent_calls_with_the_same_and_with_other_orders(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel, _ = await shop(ref, stock=1000)
    same = [json.dumps(payload(f"C-{i}", [("A", 1), ("B", 2)], phone=f"1370000{i:04d}")) for i in range(40)]
    other = [json.dumps(payload(f"D-{i}", [("B", 1), ("A", 1)], phone=f"1360000{i:04d}")) for i in range(40)]
    db = get_db()
    runs = await asyncio.gather(
        doors.ingest_many(db, ref, channel.id, same),
        doors.ingest_many(db, ref, channel.id, same),
        doors.ingest_many(db, ref, channel.id, other),
    )
    assert all(r.ok for results in runs for r in results)
    assert sorted(r.outcome for r in runs[0] + runs[1]).count("created") == 40
    async with tenant_session(ref) as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 80
        assert await session.scalar(select(func.count()).select_from(Reservation)) == 160
        assert await ledger.check_ledger(session) == []
        statuses = set((await session.scalars(select(Order.status))).all())
    assert statuses == {OrderStatus.reserved}


async def test_webhooks_arriving_together_are_ingested_together_each_with_its_own_answer(
    client, gql, tenant_a
):
    """Through HTTP: a burst of deliveries to one channel (new orders, twins of one order, a payload
    that does not parse) each gets the answer a lone delivery would get."""
    from tests.door_support import make_webhook_channel, oms_headers, post

    gid, channel = await make_webhook_channel(gql, tenant_a)
    ref = await tenant_ref(tenant_a.slug)
    location = await make_location(ref, "WH-B")
    for sku in ("A", "B"):
        await make_sellable(ref, channel.id, stock=100, location_id=location, sku_id=sku)
    bodies = [
        json.dumps(payload(f"W-{i}", [("A", 1), ("B", 1)], phone=f"1350000{i:04d}")).encode()
        for i in range(12)
    ]
    bodies += [bodies[0]] * 4 + [b'{"format": "oms.order.v1", "id": ']
    answers = await asyncio.gather(
        *(post(client, gid, body, oms_headers(channel.webhook_secret, body)) for body in bodies)
    )
    statuses = [(a.status_code, a.json()["status"]) for a in answers]
    assert statuses[:16] == [(200, "processed")] * 16 and statuses[16][1] == "failed"
    assert sorted(a.json()["outcome"] for a in answers[:16]).count("created") == 12
    async with tenant_session(ref) as session:
        orders = (await session.scalars(select(Order).where(Order.channel_id == channel.id))).all()
        assert sorted(o.external_id for o in orders) == sorted(f"W-{i}" for i in range(12))
        assert {o.status for o in orders} == {OrderStatus.reserved}
        assert await ledger.check_ledger(session) == []
