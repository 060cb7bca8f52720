"""The order state machine over its whole table, cancel giving stock back, and automations run by a
real arq worker."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from app.db import control_session, tenant_session
from app.errors import UserError
from app.orders import automations, service, states
from app.orders.jobs import run_order_automation
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from tests.factories import make_channel, make_sellable, tenant_ref
from tests.ingest_support import events_of, ingest_one, line_of, order_row, reserved, web_order


def test_check_allows_exactly_the_table():
    for current in OrderStatus:
        for target in OrderStatus:
            if target in states.TRANSITIONS[current]:
                states.check(current, target)
            else:
                with pytest.raises(UserError) as err:
                    states.check(current, target)
                assert err.value.code == "ILLEGAL_TRANSITION"
    assert {OrderStatus.cancelled, OrderStatus.returned} == states.FINAL
    assert set(states.TRANSITIONS) == set(OrderStatus)


async def test_transitions_of_a_real_order_follow_the_table(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=5)
    created = await ingest_one(ref, channel, web_order("SM-1", [line_of(s)], status="pending_payment"))
    legal = illegal = 0
    async with tenant_session(ref) as session:
        order = await service.get_order(session, created.order_id)
        for current in OrderStatus:
            for target in OrderStatus:
                savepoint = await session.begin_nested()
                order.status = current
                await session.flush()
                try:
                    await service.transition(session, order, target, actor="test")
                except UserError as err:
                    assert err.code == "ILLEGAL_TRANSITION" and target not in states.TRANSITIONS[current]
                    illegal += 1
                else:
                    assert order.status == target and target in states.TRANSITIONS[current]
                    legal += 1
                await savepoint.rollback()
                await session.refresh(order)
    assert legal == sum(len(t) for t in states.TRANSITIONS.values())
    assert legal + illegal == len(OrderStatus) ** 2


async def test_cancel_releases_stock_and_is_final(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=5)
    created = await ingest_one(ref, channel, web_order("CN-1", [line_of(s, 3)]))
    assert created.status == "reserved" and await reserved(ref, s.material_id) == 3
    async with tenant_session(ref) as session:
        order = await service.cancel(session, created.order_id, reason="buyer called", actor="op")
        assert order.status == OrderStatus.cancelled
    assert await reserved(ref, s.material_id) == 0
    last = (await events_of(ref, created.order_id))[-1]
    assert (last.from_status, last.to_status, last.details) == (
        "reserved",
        "cancelled",
        {"units_released": 3},
    )
    with pytest.raises(UserError) as err:
        async with tenant_session(ref) as session:
            await service.cancel(session, created.order_id, reason="again", actor="op")
    assert err.value.code == "ILLEGAL_TRANSITION"

    shipped = await ingest_one(ref, channel, web_order("CN-2", [line_of(s)]))
    async with tenant_session(ref) as session:
        order = await service.get_order(session, shipped.order_id)
        order.status = OrderStatus.shipped  # as fulfilment will set it
    with pytest.raises(UserError) as err:
        async with tenant_session(ref) as session:
            await service.cancel(session, shipped.order_id, reason="too late", actor="op")
    assert err.value.code == "ILLEGAL_TRANSITION"
    assert await reserved(ref, s.material_id) == 1


# --- automations ---------------------------------------------------------------------------------------


async def test_automation_settings_are_validated(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    bad = [
        (("", "received", "cancel", 30), "INVALID_NAME"),
        (("x", "nowhere", "cancel", 30), "INVALID_STATUS"),
        (("x", "shipped", "cancel", 30), "INVALID_STATUS"),  # a shipped order cannot be cancelled
        (("x", "received", "release", 30), "INVALID_STATUS"),
        (("x", "received", "explode", 30), "INVALID_ACTION"),
        (("x", "received", "cancel", -1), "INVALID_DELAY"),
        (("x", "received", "cancel", "30"), "INVALID_DELAY"),
    ]
    async with tenant_session(ref) as session:
        for args, code in bad:
            with pytest.raises(UserError) as err:
                await automations.create_automation(session, *args)
            assert err.value.code == code, args
        with pytest.raises(UserError) as err:
            await automations.create_automation(session, "x", "received", "cancel", 5, hold_code="blacklist")
        assert err.value.code == "INVALID_HOLD_CODE"
        row = await automations.create_automation(session, "unpaid 30", "received", "cancel", 30)
        assert [a.id for a in await automations.list_automations(session)] == [row.id]
        await automations.delete_automation(session, row.id)
        assert await automations.list_automations(session) == []


async def _park_route_jobs() -> None:
    """route_order belongs to routing (not built here): keep the worker from picking it up."""
    async with control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.job == "route_order", OutboxMessage.sent_at.is_(None))
            .values(sent_at=func.now())
        )


async def _automation_jobs(tenant_id: int, order_id: int) -> list[OutboxMessage]:
    async with control_session() as session:
        query = select(OutboxMessage).where(
            OutboxMessage.job == "run_order_automation",
            OutboxMessage.tenant_id == tenant_id,
            OutboxMessage.kwargs["order_id"].as_integer() == order_id,
        )
        return list((await session.scalars(query)).all())


async def test_unpaid_order_is_cancelled_by_an_automation_run_by_the_worker(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=5)
    async with tenant_session(ref) as session:
        automation = await automations.create_automation(session, "cancel unpaid", "received", "cancel", 0)
    unpaid = await ingest_one(ref, channel, web_order("AU-1", [line_of(s)], status="pending_payment"))
    paid = await ingest_one(ref, channel, web_order("AU-2", [line_of(s)]))  # never received-and-waiting
    [job] = await _automation_jobs(ref.id, unpaid.order_id)
    assert job.kwargs["automation_id"] == automation.id
    assert await _automation_jobs(ref.id, paid.order_id) == []
    await _park_route_jobs()
    await run_jobs()
    assert (await order_row(ref, unpaid.order_id)).status == OrderStatus.cancelled
    assert (await order_row(ref, paid.order_id)).status == OrderStatus.reserved
    last = (await events_of(ref, unpaid.order_id))[-1]
    assert last.to_status == "cancelled" and last.actor == "automation:cancel unpaid"
    # arq may deliver twice: the second run finds the order moved on.
    again = await run_order_automation({}, outbox_id=job.id, tenant_id=ref.id, **job.kwargs)
    assert again == "moved_on"


async def test_automation_for_an_order_that_moved_on_does_nothing(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=5)
    async with tenant_session(ref) as session:
        await automations.create_automation(session, "cancel unpaid", "received", "cancel", 0)
    unpaid = await ingest_one(ref, channel, web_order("MO-1", [line_of(s)], status="pending_payment"))
    paid = await ingest_one(
        ref, channel, web_order("MO-1", [line_of(s)], updated_at="2026-11-01T10:05:00+08:00")
    )
    assert paid.status == "reserved"
    [job] = await _automation_jobs(ref.id, unpaid.order_id)
    await _park_route_jobs()
    await run_jobs()
    assert (await order_row(ref, unpaid.order_id)).status == OrderStatus.reserved
    assert await reserved(ref, s.material_id) == 1
    async with tenant_session(ref) as session:
        outcome = await service.run_automation(
            session, unpaid.order_id, job.kwargs["automation_id"], job.kwargs["entered_at"]
        )
    assert outcome == "moved_on"


async def test_release_automation_lets_held_orders_through(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=5)
    async with tenant_session(ref) as session:
        await automations.create_automation(
            session, "address review", "on_hold", "release", 0, hold_code="address_incomplete"
        )
    no_street = {"name": "A", "phone": "13700000003", "country": "CN", "city": "成都市"}
    held = await ingest_one(ref, channel, web_order("RA-1", [line_of(s)], address=no_street))
    clean = await ingest_one(ref, channel, web_order("RA-2", [line_of(s)], phone="13700000004"))
    assert held.status == "on_hold" and clean.status == "reserved"
    await _park_route_jobs()
    await run_jobs()
    assert (await order_row(ref, held.order_id)).status == OrderStatus.reserved
    assert await reserved(ref, s.material_id) == 2


async def test_automation_job_for_a_missing_tenant_or_disabled_automation(tenant_a):
    assert (
        await run_order_automation(
            {}, outbox_id=1, tenant_id=10**9, order_id=1, automation_id=1, entered_at="2026-01-01T00:00:00"
        )
        == "no_tenant"
    )
    ref = await tenant_ref(tenant_a.slug)
    async with tenant_session(ref) as session:
        row = await automations.create_automation(session, "paused", "received", "cancel", 0)
        await automations.set_automation_enabled(session, row.id, False)
    outcome = await run_order_automation(
        {}, outbox_id=1, tenant_id=ref.id, order_id=1, automation_id=row.id, entered_at="2026-01-01T00:00:00"
    )
    assert outcome == "disabled"
