"""Inventory invariants: no oversell under real concurrency, the ledger replays to the levels, ATP
honours pools and protection, and bad quantities are refused."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import func, select

from app.catalog.models import ProductKind
from app.errors import UserError
from app.inventory import atp, ledger, service
from app.inventory.models import (
    LocationStatus,
    NetworkStock,
    PoolMode,
    Reservation,
    StockAlert,
    StockLevel,
    StockMovement,
    StockPublication,
)
from app.inventory.reservations import ReserveLine
from tests.factories import tenant_ref
from tests.inventory_helpers import channel, location, material, product

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def tref(db, tenant_a):
    return await tenant_ref(tenant_a.slug)


async def _reserve_many(db, tref, product_id: int, n: int, qty: int = 1, channel_id=None):
    """n concurrent reservations, each in its own transaction on its own connection."""

    async def one(i: int):
        try:
            async with db.tenant_session(tref) as s:
                await service.reserve(
                    s,
                    [ReserveLine(product_id, qty)],
                    reference=f"order-{product_id}-{i}",
                    channel_id=channel_id,
                )
            return "ok"
        except UserError as exc:
            return exc.code

    return await asyncio.gather(*(one(i) for i in range(n)))


async def _network(db, tref, material_id) -> NetworkStock:
    async with db.tenant_session(tref) as s:
        return await s.get(NetworkStock, material_id)


async def test_200_concurrent_reservations_on_the_last_10_units(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        p = await product(s, [(m, 1)])
        loc = await location(s)
        await service.receive(s, loc.id, m.id, 10)
    results = await _reserve_many(db, tref, p.id, 200)
    assert results.count("ok") == 10
    assert set(results) == {"ok", "INSUFFICIENT_STOCK"}
    n = await _network(db, tref, m.id)
    assert (n.on_hand, n.reserved, n.on_hand - n.reserved - n.safety_stock) == (10, 10, 0)
    async with db.tenant_session(tref) as s:
        assert await ledger.check_ledger(s) == []


async def test_bundle_and_single_sharing_a_component_never_oversell(db, tref):
    async with db.tenant_session(tref) as s:
        machine, beans = await material(s, name="Coffee machine"), await material(s, name="Beans 1kg")
        bundle = await product(s, [(machine, 1), (beans, 3)], kind=ProductKind.bundle)
        single_beans = await product(s, [(beans, 1)])
        loc = await location(s)
        await service.receive(s, loc.id, machine.id, 5)
        await service.receive(s, loc.id, beans.id, 20)
    bundles, singles = await asyncio.gather(
        _reserve_many(db, tref, bundle.id, 60), _reserve_many(db, tref, single_beans.id, 60)
    )
    sold_beans = 3 * bundles.count("ok") + singles.count("ok")
    beans_row = await _network(db, tref, beans.id)
    machine_row = await _network(db, tref, machine.id)
    assert bundles.count("ok") <= 5
    assert beans_row.reserved == sold_beans <= 20
    assert machine_row.reserved == bundles.count("ok")
    # Single-bean orders failed at least 40 times, which only happens at zero: all beans were sold.
    assert sold_beans == 20
    async with db.tenant_session(tref) as s:
        assert await ledger.check_ledger(s) == []


async def test_reserve_is_all_or_nothing_and_idempotent(db, tref):
    async with db.tenant_session(tref) as s:
        a, b = await material(s), await material(s)
        pa, pb = await product(s, [(a, 1)]), await product(s, [(b, 1)])
        loc = await location(s)
        await service.receive(s, loc.id, a.id, 5)
        await service.receive(s, loc.id, b.id, 1)
    with pytest.raises(UserError) as err:
        async with db.tenant_session(tref) as s:
            await service.reserve(s, [ReserveLine(pa.id, 2), ReserveLine(pb.id, 2)], reference="o-1")
    assert err.value.code == "INSUFFICIENT_STOCK" and err.value.field == ["lines", "1", "quantity"]
    assert (await _network(db, tref, a.id)).reserved == 0  # line 1 was rolled back with line 2
    for _ in range(2):
        async with db.tenant_session(tref) as s:
            await service.reserve(s, [ReserveLine(pa.id, 2)], reference="o-2")
    assert (await _network(db, tref, a.id)).reserved == 2
    for _ in range(2):
        async with db.tenant_session(tref) as s:
            released = await service.release(s, "o-2")
    assert (await _network(db, tref, a.id)).reserved == 0 and released == 0  # second release is a no-op


async def test_presale_products_may_go_short_others_may_not(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        presale = await product(s, [(m, 1)], presale=True)
        loc = await location(s)
        await service.receive(s, loc.id, m.id, 3)
        result = await service.reserve(s, [ReserveLine(presale.id, 5)], reference="pre-1")
    assert [(r.quantity, r.backordered) for r in result] == [(5, 2)]
    assert (await _network(db, tref, m.id)).reserved == 3


@pytest.mark.parametrize("qty", [0, -1, 10**9, 2.5, True])
async def test_bad_quantities_are_refused(db, tref, qty):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        loc = await location(s)
        with pytest.raises(UserError) as err:
            await service.receive(s, loc.id, m.id, qty)
    assert err.value.code == "INVALID_QUANTITY"


async def test_stock_never_goes_negative(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        loc = await location(s)
        await service.receive(s, loc.id, m.id, 2)
    with pytest.raises(UserError) as err:
        async with db.tenant_session(tref) as s:
            await service.adjust(s, loc.id, m.id, -3, reason="broken")
    assert err.value.code == "INSUFFICIENT_STOCK"
    async with db.tenant_session(tref) as s:
        level = await s.get(StockLevel, (loc.id, m.id))
        assert level.on_hand == 2


async def test_atp_respects_pools_and_core_channel_protection(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        p = await product(s, [(m, 1)])
        loc = await location(s)
        await service.receive(s, loc.id, m.id, 100)
        await service.set_safety_stock(s, loc.id, m.id, 10)  # sellable: 90
        core, quota, share, shared = (
            await channel(s, is_core=True),
            await channel(s),
            await channel(s),
            await channel(s),
        )
        await service.set_pool(s, quota.id, PoolMode.quota, 15)
        await service.set_pool(s, share.id, PoolMode.percent, 40, material_id=m.id)  # 40% of 90 = 36
        await service.set_protect_below(s, 20)
        atps = {c.id: (await atp.channel_atp(s, c.id, [m.id]))[m.id] for c in (core, quota, share, shared)}
    assert atps == {core.id: 90, quota.id: 15, share.id: 36, shared.id: 70}

    # The quota is a hard limit under concurrency too: 30 single-unit orders, 15 succeed.
    results = await _reserve_many(db, tref, p.id, 30, channel_id=quota.id)
    assert results.count("ok") == 15
    async with db.tenant_session(tref) as s:
        assert (await atp.channel_atp(s, quota.id, [m.id]))[m.id] == 0
        # Non-core channels stop at the protection line; the core channel can sell the rest.
        assert (await atp.channel_atp(s, shared.id, [m.id]))[m.id] == 90 - 15 - 20
        await service.reserve(s, [ReserveLine(p.id, 55)], reference="big-shared", channel_id=shared.id)
        with pytest.raises(UserError):
            async with s.begin_nested():
                await service.reserve(s, [ReserveLine(p.id, 1)], reference="one-more", channel_id=shared.id)
        await service.reserve(s, [ReserveLine(p.id, 20)], reference="core", channel_id=core.id)
        assert (await atp.channel_atp(s, core.id, [m.id]))[m.id] == 0
        assert await ledger.check_ledger(s) == []


async def test_pausing_a_location_takes_its_stock_off_sale(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        east, west = await location(s), await location(s)
        await service.receive(s, east.id, m.id, 7)
        await service.receive(s, west.id, m.id, 5)
        await service.set_location_status(s, east.id, LocationStatus.paused, "WMS outage")
        assert (await s.get(NetworkStock, m.id, populate_existing=True)).on_hand == 5
        await service.set_location_status(s, east.id, LocationStatus.active)
        assert (await s.get(NetworkStock, m.id, populate_existing=True)).on_hand == 12
        with pytest.raises(UserError) as err:
            await service.set_location_status(s, east.id, LocationStatus.paused, "")
        assert err.value.code == "REASON_REQUIRED"


async def test_low_stock_alert_fires_once_when_crossing_the_threshold(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s, low_stock_threshold=5)
        p = await product(s, [(m, 1)])
        loc = await location(s)
        await service.receive(s, loc.id, m.id, 8)
        for i in range(6):
            await service.reserve(s, [ReserveLine(p.id, 1)], reference=f"low-{i}")
        alerts = (await s.scalars(select(StockAlert).where(StockAlert.material_id == m.id))).all()
    assert [(a.available, a.threshold) for a in alerts] == [(4, 5)]


async def test_ledger_replays_to_levels_after_random_operations(db, tref):
    """A randomized sequence of every kind of change (fixed seeds, so a failure reproduces)."""
    async with db.tenant_session(tref) as s:
        mats = [await material(s) for _ in range(3)]
        prods = [await product(s, [(m, 1)]) for m in mats] + [
            await product(s, [(mats[0], 2), (mats[1], 1)], kind=ProductKind.bundle)
        ]
        locs = [await location(s) for _ in range(3)]
    for seed in range(4):
        rng = random.Random(seed)
        refs: list[str] = []
        for step in range(60):
            op = rng.choice(
                [
                    "receive",
                    "adjust",
                    "count",
                    "safety",
                    "defective",
                    "transfer",
                    "reserve",
                    "release",
                    "status",
                ]
            )
            m, loc, other = rng.choice(mats), rng.choice(locs), rng.choice(locs)
            try:
                async with db.tenant_session(tref) as s:
                    if op == "receive":
                        await service.receive(s, loc.id, m.id, rng.randint(1, 20))
                    elif op == "adjust":
                        await service.adjust(s, loc.id, m.id, rng.choice([-3, -1, 2, 5]), reason="fix")
                    elif op == "count":
                        await service.count(s, loc.id, m.id, rng.randint(0, 15))
                    elif op == "safety":
                        await service.set_safety_stock(s, loc.id, m.id, rng.randint(0, 3))
                    elif op == "defective":
                        await service.mark_defective(s, loc.id, m.id, rng.randint(1, 2), reason="qc")
                    elif op == "transfer":
                        await service.transfer(s, loc.id, other.id, m.id, rng.randint(1, 3))
                        await service.receive_transfer(s, other.id, m.id, 1)
                    elif op == "reserve":
                        ref = f"rnd-{seed}-{step}"
                        await service.reserve(
                            s, [ReserveLine(rng.choice(prods).id, rng.randint(1, 3))], reference=ref
                        )
                        refs.append(ref)
                    elif op == "release" and refs:
                        await service.release(s, refs.pop(rng.randrange(len(refs))))
                    elif op == "status":
                        status = rng.choice([LocationStatus.active, LocationStatus.paused])
                        await service.set_location_status(s, loc.id, status, "test")
            except UserError:
                pass  # refused changes must leave no trace: checked by the replay below
        async with db.tenant_session(tref) as s:
            assert await ledger.check_ledger(s) == [], f"seed {seed}"
            negative = await s.scalar(
                select(func.count()).select_from(NetworkStock).where(NetworkStock.reserved < 0)
            )
            assert negative == 0


async def test_channel_sync_publishes_changes_once(db, tref, run_jobs):
    from app.catalog.models import ChannelListing

    async with db.tenant_session(tref) as s:
        m = await material(s)
        p = await product(s, [(m, 2)], kind=ProductKind.bundle)
        ch = await channel(s)
        s.add(
            ChannelListing(
                channel_id=ch.id,
                external_item_id="item-1",
                external_sku_id="",
                product_id=p.id,
                title="Twin pack",
                active=True,
            )
        )
        loc = await location(s)
        await service.receive(s, loc.id, m.id, 9)
    from app.inventory.sync import sync_pending

    async with db.tenant_session(tref) as s:  # the job's body, without waiting for the debounce
        assert await sync_pending(s) == 1
        assert await sync_pending(s) == 0
        pubs = (await s.scalars(select(StockPublication))).all()
    assert [(pub.quantity, pub.payload["item_id"]) for pub in pubs] == [(4, "item-1")]


# ---- review fixes ----------------------------------------------------------------------------------


async def _sync_jobs(db, tref) -> int:
    """Sync jobs of this tenant still in the outbox (not yet handed to arq)."""
    from app.outbox import OutboxMessage

    async with db.control_session() as s:
        return await s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == tref.id,
                OutboxMessage.job == "sync_channel_stock",
                OutboxMessage.sent_at.is_(None),
            )
        )


async def test_an_order_of_only_virtual_and_service_products_reserves_nothing(db, tref):
    async with db.tenant_session(tref) as s:
        card = await product(s, [], kind=ProductKind.virtual)
        install = await product(s, [], kind=ProductKind.service)
    for _ in range(2):
        async with db.tenant_session(tref) as s:
            lines = [ReserveLine(card.id, 2), ReserveLine(install.id, 1)]
            assert await service.reserve(s, lines, reference="virtual-only") == []
    async with db.tenant_session(tref) as s:
        held = await s.scalar(select(func.count()).select_from(Reservation))
        moved = await s.scalar(select(func.count()).select_from(StockMovement))
    assert (held, moved) == (0, 0)


async def test_one_reference_reserved_concurrently_is_held_once(db, tref):
    """Eight sessions, eight connections, one reference: one reservation, the same answer for all."""
    async with db.tenant_session(tref) as s:
        a, b = await material(s), await material(s)
        kit = await product(s, [(a, 1), (b, 2)], kind=ProductKind.bundle)
        loc = await location(s)
        await service.receive(s, loc.id, a.id, 50)
        await service.receive(s, loc.id, b.id, 50)

    async def one():
        async with db.tenant_session(tref) as s:
            result = await service.reserve(s, [ReserveLine(kit.id, 3)], reference="SAME-REF")
            await asyncio.sleep(0.05)  # keep the transaction open while the others arrive
            return result

    results = await asyncio.gather(*(one() for _ in range(8)))
    expected = [(a.id, 3, 0), (b.id, 6, 0)]
    assert all([(r.material_id, r.quantity, r.backordered) for r in result] == expected for result in results)
    assert ((await _network(db, tref, a.id)).reserved, (await _network(db, tref, b.id)).reserved) == (3, 6)
    async with db.tenant_session(tref) as s:
        rows = (await s.scalars(select(Reservation).where(Reservation.reference == "SAME-REF"))).all()
        assert len(rows) == 2
        assert await ledger.check_ledger(s) == []


async def test_a_released_reference_is_not_reserved_again(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        p = await product(s, [(m, 1)])
        loc = await location(s)
        await service.receive(s, loc.id, m.id, 5)
        await service.reserve(s, [ReserveLine(p.id, 2)], reference="cancelled-order")
        await service.release(s, "cancelled-order")
    with pytest.raises(UserError) as err:
        async with db.tenant_session(tref) as s:
            await service.reserve(s, [ReserveLine(p.id, 2)], reference="cancelled-order")
    assert (err.value.code, err.value.field) == ("RESERVATION_RELEASED", ["reference"])
    assert (await _network(db, tref, m.id)).reserved == 0


async def test_stock_changes_need_an_existing_location_and_closed_ones_receive_nothing(db, tref):
    async with db.tenant_session(tref) as s:
        m = await material(s)
        open_, closing = await location(s), await location(s)
        await service.receive(s, open_.id, m.id, 10)
        await service.receive(s, closing.id, m.id, 4)
        await service.transfer(s, open_.id, closing.id, m.id, 2)
        await service.set_location_status(s, closing.id, LocationStatus.closed, "lease ended")
    nowhere = 10**12
    calls = {
        "receive": lambda s: service.receive(s, nowhere, m.id, 1),
        "adjust": lambda s: service.adjust(s, nowhere, m.id, 1, reason="x"),
        "count": lambda s: service.count(s, nowhere, m.id, 1),
        "safety": lambda s: service.set_safety_stock(s, nowhere, m.id, 1),
        "defective": lambda s: service.mark_defective(s, nowhere, m.id, 1, reason="x"),
        "receive_transfer": lambda s: service.receive_transfer(s, nowhere, m.id, 1),
        "transfer_from": lambda s: service.transfer(s, nowhere, open_.id, m.id, 1),
        "transfer_to": lambda s: service.transfer(s, open_.id, nowhere, m.id, 1),
        "receive_many": lambda s: service.receive_many(s, [service.ReceiveRow(nowhere, m.id, 1)]),
        "count_many": lambda s: service.count_many(s, [service.CountRow(nowhere, m.id, 1)]),
    }
    for name, call in calls.items():
        with pytest.raises(UserError) as err:
            async with db.tenant_session(tref) as s:
                await call(s)
        assert err.value.code == "NOT_FOUND", name
    refused = {
        "receive": (lambda s: service.receive(s, closing.id, m.id, 1), ["locationId"]),
        "transfer": (lambda s: service.transfer(s, open_.id, closing.id, m.id, 1), ["toLocationId"]),
        "receive_many": (
            lambda s: service.receive_many(s, [service.ReceiveRow(closing.id, m.id, 1)]),
            ["rows", "0", "locationId"],
        ),
    }
    for name, (call, field) in refused.items():
        with pytest.raises(UserError) as err:
            async with db.tenant_session(tref) as s:
                await call(s)
        assert (err.value.code, err.value.field) == ("LOCATION_CLOSED", field), name
    async with db.tenant_session(tref) as s:
        # What is there can still be counted and booked: a transfer that left before the closing arrives.
        await service.receive_transfer(s, closing.id, m.id, 2)
        assert (await service.count(s, closing.id, m.id, 0)).on_hand == 0
        assert await ledger.check_ledger(s) == []


async def test_losing_promised_stock_applies_and_raises_a_low_stock_alert(db, tref):
    """Reality wins: a count, an adjustment or a pause below what is reserved is applied, and says so."""
    async with db.tenant_session(tref) as s:
        counted, adjusted, paused = await material(s), await material(s), await material(s)
        warned = await material(s, low_stock_threshold=20)
        loc, store = await location(s), await location(s)
        for m in (counted, adjusted, warned):
            await service.receive(s, loc.id, m.id, 10)
        await service.receive(s, store.id, paused.id, 10)
        for i, m in enumerate((counted, adjusted, paused, warned)):
            await service.reserve(
                s, [ReserveLine((await product(s, [(m, 1)])).id, 8)], reference=f"promised-{i}"
            )
    async with db.tenant_session(tref) as s:
        before = {a.id for a in (await s.scalars(select(StockAlert))).all()}
        assert (await service.count(s, loc.id, counted.id, 5)).on_hand == 5
        assert (await service.adjust(s, loc.id, adjusted.id, -4, reason="water damage")).on_hand == 6
        await service.set_location_status(s, store.id, LocationStatus.paused, "flooded")
        await service.count(s, loc.id, warned.id, 3)
    async with db.tenant_session(tref) as s:
        new = (await s.scalars(select(StockAlert).where(StockAlert.id.not_in(before)))).all()
        alerts = {a.material_id: (a.available, a.threshold) for a in new}
        network = {n.material_id: n for n in (await s.scalars(select(NetworkStock))).all()}
        assert await ledger.check_ledger(s) == []
    assert alerts == {counted.id: (-3, 0), adjusted.id: (-2, 0), paused.id: (-8, 0), warned.id: (-5, 0)}
    assert (network[counted.id].on_hand, network[counted.id].reserved) == (5, 8)
    assert (network[paused.id].on_hand, network[paused.id].reserved) == (0, 8)


async def test_channel_sync_is_debounced_per_tenant(db, tref):
    """Many changes, in many transactions, of many materials: one pending job for the tenant; the job
    syncs them all, and the next change after it enqueues the next job."""
    from app.inventory.models import SyncRequest
    from app.inventory.sync import sync_pending

    async with db.tenant_session(tref) as s:  # start from an empty buffer
        await sync_pending(s)
    jobs = await _sync_jobs(db, tref)
    async with db.tenant_session(tref) as s:
        mats = [await material(s) for _ in range(5)]
        loc = await location(s)
    for m in mats:
        for qty in (3, 4):
            async with db.tenant_session(tref) as s:
                await service.receive(s, loc.id, m.id, qty)
    assert await _sync_jobs(db, tref) == jobs + 1
    async with db.tenant_session(tref) as s:
        assert set((await s.scalars(select(SyncRequest.material_id))).all()) == {m.id for m in mats}
        await sync_pending(s)
    async with db.tenant_session(tref) as s:
        await service.receive(s, loc.id, mats[0].id, 1)
    assert await _sync_jobs(db, tref) == jobs + 2


async def test_a_change_during_a_sync_run_is_never_left_behind(db, tref):
    """The two interleavings of a change and a running sync job, each on its own connection."""
    from app.inventory.models import SyncRequest
    from app.inventory.sync import sync_pending

    async with db.tenant_session(tref) as s:
        a, b, c = await material(s), await material(s), await material(s)
        loc = await location(s)
        await service.receive(s, loc.id, a.id, 5)
    jobs = await _sync_jobs(db, tref)

    # 1. The job deletes the buffer first: the change waits for it, then enqueues the next job.
    async with db.tenant_session(tref) as job:
        await sync_pending(job)
        change = asyncio.create_task(_receive(db, tref, loc.id, a.id))
        await asyncio.sleep(0.3)
        assert not change.done()  # waiting for the job's delete of a's row
    await change
    assert await _sync_jobs(db, tref) == jobs + 1
    async with db.tenant_session(tref) as s:
        assert (await s.scalars(select(SyncRequest.material_id))).all() == [a.id]

    # 2. The change locks a's pending row first: the job waits, then takes what the change committed.
    async with db.tenant_session(tref) as s:
        await service.receive(s, loc.id, a.id, 1)  # touches a's row: relies on the pending job
        run = asyncio.create_task(_sync(db, tref))
        await asyncio.sleep(0.3)
        assert not run.done()  # waiting for this transaction's lock on a's row
        await service.receive(s, loc.id, b.id, 1)
        await service.receive(s, loc.id, c.id, 1)
    await run
    assert await _sync_jobs(db, tref) == jobs + 1  # nothing new enqueued: the pending job took it all
    async with db.tenant_session(tref) as s:
        assert (await s.scalars(select(SyncRequest.material_id))).all() == []


async def _receive(db, tref, location_id: int, material_id: int) -> None:
    async with db.tenant_session(tref) as s:
        await service.receive(s, location_id, material_id, 1)


async def _sync(db, tref) -> None:
    from app.inventory.sync import sync_pending

    async with db.tenant_session(tref) as s:
        await sync_pending(s)
