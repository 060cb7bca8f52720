"""Fulfilment lifecycle, through real arq workers and a real connector server: a location paused
mid-flight (its unaccepted work re-routed, its connector told; accepted work left with a warning),
pick-ups not collected in time (cancelled, stock released), carrier SLA alerts (once), the minute sweep
catching a lost delayed job, per-location timeouts through GraphQL, and tenant isolation of it all."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from app.db import control_session, get_db, tenant_session
from app.fulfillment import jobs as fulfilment_jobs
from app.fulfillment import notices, pickups, sla, timeouts
from app.fulfillment.models import (
    Carrier,
    ConnectorDelivery,
    FulfillmentOrder,
    FulfillmentOrderLine,
    FulfillmentStatus,
    Shipment,
)
from app.fulfillment.sweep import sweep
from app.inventory.models import LocationKind, NetworkStock
from app.orders.models import Order, OrderStatus
from app.outbox import OutboxMessage
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    SHANGHAI,
    assert_ledger,
    callback,
    connect,
    drain,
    events,
    fulfillment_orders,
    gid,
    ingest,
    level,
    make_shop,
    order_of,
    run_delayed,
    sign,
    store_order,
    warehouse,
)

FS = FulfillmentStatus
LOCATION = "id code acceptTimeoutMinutes pickupHoldHours"
SET_STATUS = f"""mutation($input: SetLocationStatusInput!) {{
  setLocationStatus(input: $input) {{ location {{ id status }} {ERRORS} }} }}"""
SET_TIMEOUTS = f"""mutation($input: SetLocationTimeoutsInput!) {{
  setLocationTimeouts(input: $input) {{ location {{ {LOCATION} }} {ERRORS} }} }}"""


def _messages(server, secret: str, event: str) -> list[dict]:
    """What the connector server got for ``event``, each checked against the documented signature."""
    out = []
    for headers, body in server.requests:
        payload = json.loads(body)
        if payload["event"] == event:
            assert headers["x-oms-signature"] == sign(secret, body)["X-OMS-Signature"]
            out.append(payload)
    return out


async def _outbox(ref, job: str) -> list[OutboxMessage]:
    async with control_session() as session:
        query = select(OutboxMessage).where(OutboxMessage.tenant_id == ref.id, OutboxMessage.job == job)
        return list((await session.scalars(query.order_by(OutboxMessage.id))).all())


async def _pause(gql, tenant, ref, location_id: int, reason: str = "power outage") -> None:
    data = await gql(
        SET_STATUS,
        {"input": {"id": gid("Location", ref, location_id), "status": "paused", "reason": reason}},
        api_key=tenant.api_key,
    )
    assert data["setLocationStatus"]["userErrors"] == []


async def _make_pickup(ref, order_id: int) -> None:
    async with tenant_session(ref) as session:
        order = await session.get(Order, order_id)
        order.extra = {**(order.extra or {}), "fulfilment_type": "pickup"}


async def _past(ref, model, row_id: int, column: str) -> None:
    """``column`` of the row is a second ago, and every delayed outbox row of the tenant is due."""
    async with tenant_session(ref) as session:
        await session.execute(
            update(model).where(model.id == row_id).values({column: func.now() - timedelta(seconds=1)})
        )
    async with control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.tenant_id == ref.id, OutboxMessage.sent_at.is_(None))
            .values(available_at=func.now())
        )


# ---- a location paused mid-flight -------------------------------------------------------------------


async def test_a_paused_store_loses_its_unaccepted_order_and_its_connector_is_told(
    gql, tenant_a, tenant_b, run_jobs, connector_server
):
    ref, store, shanghai, shop, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "OUTAGE-1"
    )
    assert len(_messages(connector_server, secret, "fulfillment_order.released")) == 1
    await _pause(gql, tenant_a, ref, store)
    await drain(run_jobs)

    lost, second = await fulfillment_orders(ref, order_id)
    assert lost.status is FS.rejected and lost.reason == "Store Chengdu is paused: power outage"
    assert second.location_id == shanghai and second.status is FS.assigned
    gloves = shop.materials["SKU-2002"]
    assert (await level(ref, store, gloves)).reserved == 0
    assert (await level(ref, shanghai, gloves)).reserved == 2
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    messages = [e.message for e in await events(ref, order_id)]
    assert (
        f"fulfilment order {fo.id} taken from Store Chengdu: Store Chengdu is paused: power outage;"
        " re-routed" in messages
    )
    [cancelled] = _messages(connector_server, secret, notices.CANCEL_EVENT)
    assert cancelled["fulfillment_order"]["id"] == gid("FulfillmentOrder", ref, fo.id)
    assert cancelled["reason"] == "Store Chengdu is paused: power outage"
    async with tenant_session(ref) as session:
        delivery = await session.scalar(
            select(ConnectorDelivery).where(
                ConnectorDelivery.fulfillment_order_id == fo.id,
                ConnectorDelivery.event == notices.CANCEL_EVENT,
            )
        )
    assert delivery.status.value == "sent" and delivery.attempts == 1
    await assert_ledger(ref)

    # The reroute job run again (arq may), or for another tenant: one effect.
    [row] = await _outbox(ref, "reroute_fulfilment")
    again = dict(row.kwargs, outbox_id=row.id, tenant_id=ref.id)
    assert await fulfilment_jobs.reroute_fulfilment({}, **again) == "not_waiting:rejected"
    other = await tenant_ref(tenant_b.slug)
    assert await fulfilment_jobs.reroute_fulfilment({}, **{**again, "tenant_id": other.id}) == (
        "no_fulfillment_order"
    )
    [outage] = await _outbox(ref, "location_outage")
    assert await fulfilment_jobs.location_outage(
        {}, **dict(outage.kwargs, outbox_id=1, tenant_id=ref.id)
    ) == {
        "rerouted": 0,
        "warned": 0,
    }
    await run_delayed(ref, run_jobs)  # the store's accept timeout too: it finds the order gone
    assert len(await fulfillment_orders(ref, order_id)) == 2
    assert len(_messages(connector_server, secret, notices.CANCEL_EVENT)) == 1
    await assert_ledger(ref)


async def test_accepted_work_at_a_paused_store_stays_with_a_warning(
    gql, client, tenant_a, run_jobs, connector_server
):
    ref, store, _, shop, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "OUTAGE-2"
    )
    assert (await callback(client, ref, store, secret, fo.id, "accepted")).status_code == 200
    await _pause(gql, tenant_a, ref, store, "staff shortage")
    await drain(run_jobs)

    [kept] = await fulfillment_orders(ref, order_id)
    assert kept.status is FS.accepted and kept.location_id == store
    [warning] = [e for e in await events(ref, order_id) if e.kind == "warning"]
    assert "Store Chengdu is paused: staff shortage" in warning.message and str(fo.id) in warning.message
    assert _messages(connector_server, secret, notices.CANCEL_EVENT) == []
    # The outage job again: still one warning.
    [outage] = await _outbox(ref, "location_outage")
    await fulfilment_jobs.location_outage({}, **dict(outage.kwargs, outbox_id=outage.id, tenant_id=ref.id))
    assert len([e for e in await events(ref, order_id) if e.kind == "warning"]) == 1
    assert (await level(ref, store, shop.materials["SKU-2002"])).reserved == 2
    await assert_ledger(ref)
    await run_delayed(ref, run_jobs)


# ---- pick-ups ----------------------------------------------------------------------------------------


async def test_a_pickup_not_collected_in_time_is_cancelled_and_its_stock_released(
    gql, client, tenant_a, run_jobs, connector_server
):
    ref, store, _, shop, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "PICKUP-1"
    )
    # Not a pick-up order: the store cannot say so.
    r = await callback(client, ref, store, secret, fo.id, "ready_for_pickup")
    assert r.status_code == 422 and "not collected at the store" in r.json()["error"]
    await _make_pickup(ref, order_id)
    assert (await callback(client, ref, store, secret, fo.id, "accepted")).status_code == 200
    r = await callback(client, ref, store, secret, fo.id, "ready_for_pickup")
    assert r.status_code == 200, r.text
    [held] = await fulfillment_orders(ref, order_id)
    assert held.status is FS.packed and held.pickup_by is not None
    [job] = await _outbox(ref, pickups.JOB)
    async with control_session() as session:
        wait = await session.scalar(
            select(OutboxMessage.available_at - func.now()).where(OutboxMessage.id == job.id)
        )
    assert timedelta(hours=47, minutes=59) < wait <= timedelta(hours=48)  # the default hold
    # Repeated: the hold does not start again.
    assert (await callback(client, ref, store, secret, fo.id, "ready_for_pickup")).status_code == 200
    assert len(await _outbox(ref, pickups.JOB)) == 1

    await drain(run_jobs)  # not due: nothing happens
    assert (await fulfillment_orders(ref, order_id))[0].status is FS.packed
    await _past(ref, FulfillmentOrder, fo.id, "pickup_by")
    await drain(run_jobs)

    [expired] = await fulfillment_orders(ref, order_id)
    assert expired.status is FS.cancelled and expired.reason == "not collected within 48 h"
    order = await order_of(ref, order_id)
    assert order.status is OrderStatus.cancelled
    gloves = shop.materials["SKU-2002"]
    at_store = await level(ref, store, gloves)
    assert (at_store.on_hand, at_store.reserved) == (3, 0)  # still on the shelf, no longer held
    async with tenant_session(ref) as session:
        assert (
            await session.scalar(select(NetworkStock.reserved).where(NetworkStock.material_id == gloves)) == 0
        )
    timeline = [e.message for e in await events(ref, order_id)]
    assert any(m.startswith("pick-up at Store Chengdu not collected within 48 h") for m in timeline)
    [told] = _messages(connector_server, secret, notices.CANCEL_EVENT)
    assert told["reason"] == "not collected within 48 h"
    await assert_ledger(ref)
    assert await fulfilment_jobs.pickup_expiry(
        {}, outbox_id=1, tenant_id=ref.id, fulfillment_order_id=fo.id
    ) == ("not_waiting:cancelled")
    await assert_ledger(ref)
    await run_delayed(ref, run_jobs)


async def test_a_pickup_collected_in_time_is_left_alone(gql, client, tenant_a, run_jobs, connector_server):
    ref, store, _, shop, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "PICKUP-2"
    )
    await _make_pickup(ref, order_id)
    assert (await callback(client, ref, store, secret, fo.id, "ready_for_pickup")).status_code == 200
    assert (await callback(client, ref, store, secret, fo.id, "delivered")).status_code == 200
    await _past(ref, FulfillmentOrder, fo.id, "pickup_by")
    await drain(run_jobs)

    [collected] = await fulfillment_orders(ref, order_id)
    assert collected.status is FS.delivered
    assert (await order_of(ref, order_id)).status is OrderStatus.delivered
    assert (await level(ref, store, shop.materials["SKU-2002"])).on_hand == 1  # 3 - the 2 collected
    assert await sweep(get_db()) == {}  # nothing overdue: a collected pick-up raises no SLA alert
    assert _messages(connector_server, secret, notices.CANCEL_EVENT) == []
    await assert_ledger(ref)


# ---- carrier SLA ---------------------------------------------------------------------------------


async def _shipped_order(gql, client, tenant, run_jobs, server, external_id: str, **ship):
    ref = await tenant_ref(tenant.slug)
    here = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {here: 5})
    secret = await connect(gql, tenant, ref, here, server.url)
    order_id = await ingest(shop, external_id)
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    r = await callback(client, ref, here, secret, fo.id, "shipped", **ship)
    assert r.status_code == 200, r.text
    async with tenant_session(ref) as session:
        shipment = await session.scalar(select(Shipment).where(Shipment.fulfillment_order_id == fo.id))
    return ref, here, secret, order_id, fo, shipment


async def test_a_shipment_without_a_scan_past_its_sla_raises_one_alert(
    gql, client, tenant_a, tenant_b, run_jobs, connector_server
):
    ref, _, _, order_id, _, shipment = await _shipped_order(
        gql, client, tenant_a, run_jobs, connector_server, "SLA-1", carrier="SF", tracking_number="SF123"
    )
    async with tenant_session(ref) as session:
        due = await session.scalar(
            select(Shipment.sla_due_at - Shipment.shipped_at).where(Shipment.id == shipment.id)
        )
    assert due == timedelta(days=sla.DEFAULT_SLA_DAYS)  # no SF carrier row: the default

    assert await sweep(get_db()) == {}  # not due yet
    await _past(ref, Shipment, shipment.id, "sla_due_at")
    assert (await sweep(get_db()))["sla:alerted"] == 1
    assert await sweep(get_db()) == {}  # swept again: still one alert
    async with tenant_session(ref) as session:
        assert await sla.alert_unscanned(session, shipment.id) == "already_alerted"
    [alert] = [e for e in await events(ref, order_id) if e.kind == "alert"]
    assert f"shipment {shipment.id} (SF, SF123) has no carrier scan" in alert.message
    # Shown through GraphQL, to its tenant only.
    query = """query($id: ID!) { fulfillmentOrders(orderId: $id) { pickupBy
      shipments { trackingNumber slaDueAt lastScanAt alertedAt } } }"""
    [shown] = (await gql(query, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key))[
        "fulfillmentOrders"
    ]
    assert shown["pickupBy"] is None
    [parcel] = shown["shipments"]
    assert parcel["trackingNumber"] == "SF123" and parcel["alertedAt"] and parcel["slaDueAt"]
    assert parcel["lastScanAt"] is None
    other = await gql(query, {"id": gid("Order", ref, order_id)}, api_key=tenant_b.api_key)
    assert other["fulfillmentOrders"] == []


async def test_a_scanned_shipment_raises_no_alert_and_carrier_sla_days_apply(
    gql, client, tenant_a, tenant_b, run_jobs, connector_server
):
    ref = await tenant_ref(tenant_a.slug)
    async with tenant_session(ref) as session:
        session.add(
            Carrier(code="ZTO", name="ZTO Express", services={}, sla_days=1.5, cold_chain=False, active=True)
        )
    ref, here, secret, order_id, fo, shipment = await _shipped_order(
        gql, client, tenant_a, run_jobs, connector_server, "SLA-2", carrier="ZTO", tracking_number="Z9"
    )
    async with tenant_session(ref) as session:
        due = await session.scalar(
            select(Shipment.sla_due_at - Shipment.shipped_at).where(Shipment.id == shipment.id)
        )
    assert due == timedelta(days=1.5)

    # Another tenant's connector cannot scan A's shipment (nor start a pick-up hold).
    b = await tenant_ref(tenant_b.slug)
    b_here = await warehouse(b, "WH B", CHENGDU)
    b_secret = await connect(gql, tenant_b, b, b_here, connector_server.url)
    for event in ("in_transit", "ready_for_pickup"):
        body = json.dumps(
            {"event": event, "fulfillment_order_id": gid("FulfillmentOrder", ref, fo.id)}
        ).encode()
        r = await client.post(
            f"/webhooks/fulfilment/{gid('Location', b, b_here)}", content=body, headers=sign(b_secret, body)
        )
        assert r.status_code == 404 and r.json()["status"] == "failed"
        forged = await callback(client, ref, here, b_secret, fo.id, event)
        assert forged.status_code == 401
    async with tenant_session(ref) as session:
        assert (await session.get(Shipment, shipment.id)).last_scan_at is None

    r = await callback(client, ref, here, secret, fo.id, "in_transit", scanned_at="2026-01-01T08:00:00+08:00")
    assert r.status_code == 200, r.text
    bad = await callback(client, ref, here, secret, fo.id, "in_transit", scanned_at="yesterday")
    assert bad.status_code == 422
    await _past(ref, Shipment, shipment.id, "sla_due_at")
    assert await sweep(get_db()) == {}
    assert [e for e in await events(ref, order_id) if e.kind == "alert"] == []
    async with tenant_session(ref) as session:
        scanned = await session.get(Shipment, shipment.id)
    assert scanned.last_scan_at.isoformat().startswith("2026-01-01T00:00:00")
    assert scanned.alerted_at is None


# ---- the minute sweep ------------------------------------------------------------------------------


async def test_the_sweep_reroutes_an_overdue_store_whose_timeout_job_was_lost(
    gql, tenant_a, run_jobs, connector_server
):
    ref, _, shanghai, _, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "SWEEP-1"
    )
    async with control_session() as session:
        lost = await session.execute(
            delete(OutboxMessage).where(OutboxMessage.tenant_id == ref.id, OutboxMessage.job == timeouts.JOB)
        )
    assert lost.rowcount == 1
    await _past(ref, FulfillmentOrder, fo.id, "accept_by")
    await drain(run_jobs)  # no job left: nothing happens by itself
    assert (await fulfillment_orders(ref, order_id))[0].status is FS.assigned

    assert (await sweep(get_db()))["accept:timed_out"] == 1
    await drain(run_jobs)
    timed_out, second = await fulfillment_orders(ref, order_id)
    assert timed_out.status is FS.rejected and timed_out.reason == "did not accept within 30 minutes"
    assert second.location_id == shanghai
    assert len(_messages(connector_server, secret, notices.CANCEL_EVENT)) == 1
    assert await fulfilment_jobs.fulfilment_sweep({"db": get_db()}) == {}  # the cron's entry point
    await assert_ledger(ref)


def test_the_sweep_runs_every_minute_in_the_long_running_worker_only():
    from app.worker import WorkerSettings, make_worker

    [job] = [c for c in WorkerSettings.cron_jobs if c.name == "fulfilment_sweep"]
    assert job.coroutine is fulfilment_jobs.fulfilment_sweep and job.second == 0 and job.minute is None
    assert [c.name for c in make_worker(handle_signals=False).cron_jobs] == [
        "fulfilment_sweep",
        "inbox_sweep",
        "stuck_order_sweep",
    ]
    assert make_worker(burst=True, handle_signals=False).cron_jobs == []


# ---- per-location timeouts ---------------------------------------------------------------------------


async def test_location_timeouts_through_graphql_are_checked_isolated_and_used(
    gql, tenant_a, tenant_b, run_jobs, connector_server
):
    created = await gql(
        f"""mutation($input: CreateLocationInput!) {{
          createLocation(input: $input) {{ location {{ {LOCATION} }} {ERRORS} }} }}""",
        {"input": {"code": "ST-X", "name": "Store X", "kind": "store", "acceptTimeoutMinutes": 0}},
        api_key=tenant_a.api_key,
    )
    assert created["createLocation"]["location"] is None
    assert [e["code"] for e in created["createLocation"]["userErrors"]] == ["INVALID_TIMEOUT"]
    ok = await gql(
        f"""mutation($input: CreateLocationInput!) {{
          createLocation(input: $input) {{ location {{ {LOCATION} }} {ERRORS} }} }}""",
        {"input": {"code": "ST-X", "name": "Store X", "kind": "store", "pickupHoldHours": 72}},
        api_key=tenant_a.api_key,
    )
    assert ok["createLocation"]["location"]["acceptTimeoutMinutes"] == 30  # the default
    assert ok["createLocation"]["location"]["pickupHoldHours"] == 72

    ref = await tenant_ref(tenant_a.slug)
    store = await warehouse(ref, "Store Chengdu", CHENGDU, kind=LocationKind.store)
    store_gid = gid("Location", ref, store)
    for bad in ({"acceptTimeoutMinutes": 0}, {"acceptTimeoutMinutes": 1441}, {"pickupHoldHours": 0}):
        data = await gql(SET_TIMEOUTS, {"input": {"id": store_gid, **bad}}, api_key=tenant_a.api_key)
        assert [e["code"] for e in data["setLocationTimeouts"]["userErrors"]] == ["INVALID_TIMEOUT"]
    # Tenant B with A's location: not found, nothing changed.
    data = await gql(
        SET_TIMEOUTS, {"input": {"id": store_gid, "acceptTimeoutMinutes": 5}}, api_key=tenant_b.api_key
    )
    assert data["setLocationTimeouts"]["location"] is None
    assert [e["code"] for e in data["setLocationTimeouts"]["userErrors"]] == ["NOT_FOUND"]
    data = await gql(
        SET_TIMEOUTS,
        {"input": {"id": store_gid, "acceptTimeoutMinutes": 10, "pickupHoldHours": 24}},
        api_key=tenant_a.api_key,
    )
    assert data["setLocationTimeouts"]["userErrors"] == []
    assert data["setLocationTimeouts"]["location"]["acceptTimeoutMinutes"] == 10
    assert data["setLocationTimeouts"]["location"]["pickupHoldHours"] == 24

    # Used: the store's accept timeout is 10 minutes, its pick-up hold 24 h.
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {store: 3, shanghai: 5})
    secret = await connect(gql, tenant_a, ref, store, connector_server.url)
    order_id = await ingest(shop, "TIMEOUTS-1")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    [job] = await _outbox(ref, timeouts.JOB)
    async with control_session() as session:
        wait = await session.scalar(
            select(OutboxMessage.available_at - func.now()).where(OutboxMessage.id == job.id)
        )
    assert timedelta(minutes=9) < wait <= timedelta(minutes=10)
    async with tenant_session(ref) as session:
        assert await pickups.hold_hours(session, store) == 24
    await _past(ref, FulfillmentOrder, fo.id, "accept_by")
    await drain(run_jobs)
    timed_out, _ = await fulfillment_orders(ref, order_id)
    assert timed_out.reason == "did not accept within 10 minutes"
    assert len(_messages(connector_server, secret, notices.CANCEL_EVENT)) == 1
    await assert_ledger(ref)


# ---- connector cancel messages ---------------------------------------------------------------------


async def test_an_order_cancelled_after_hand_over_is_withdrawn_from_the_connector_with_retries(
    gql, tenant_a, tenant_b, run_jobs, connector_server
):
    ref, store, _, _, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "CANCEL-1"
    )
    cancel = f"""mutation($input: CancelOrderInput!) {{
      cancelOrder(input: $input) {{ order {{ status }} {ERRORS} }} }}"""
    order_gid = gid("Order", ref, order_id)
    # Tenant B cannot cancel A's order (nor make A's connector hear anything).
    refused = await gql(cancel, {"input": {"id": order_gid, "reason": "x"}}, api_key=tenant_b.api_key)
    assert [e["code"] for e in refused["cancelOrder"]["userErrors"]] == ["NOT_FOUND"]
    connector_server.status = 503  # the store's POS is down when the cancel goes out
    data = await gql(
        cancel, {"input": {"id": order_gid, "reason": "buyer changed mind"}}, api_key=tenant_a.api_key
    )
    assert data["cancelOrder"]["userErrors"] == []
    await drain(run_jobs)

    async with tenant_session(ref) as session:
        delivery = await session.scalar(
            select(ConnectorDelivery).where(
                ConnectorDelivery.fulfillment_order_id == fo.id,
                ConnectorDelivery.event == notices.CANCEL_EVENT,
            )
        )
    assert delivery.status.value == "failed" and delivery.attempts == 1 and delivery.next_attempt_at
    assert any("could not tell Store Chengdu's connector" in e.message for e in await events(ref, order_id))
    connector_server.status = 200
    await run_delayed(ref, run_jobs)  # the retry (and the store's accept timeout: nothing to do)
    attempts = _messages(connector_server, secret, notices.CANCEL_EVENT)
    assert len(attempts) == 2 and attempts[-1]["reason"] == "buyer changed mind"
    assert attempts[-1]["delivery_id"] == delivery.id
    async with tenant_session(ref) as session:
        sent = await session.get(ConnectorDelivery, delivery.id)
    assert sent.status.value == "sent" and sent.attempts == 2
    # The same attempt again: nothing sent twice.
    assert (
        await fulfilment_jobs.deliver_connector_message(
            {}, outbox_id=1, tenant_id=ref.id, delivery_id=delivery.id
        )
        == "already_sent"
    )
    assert len(_messages(connector_server, secret, notices.CANCEL_EVENT)) == 2
    assert (await fulfillment_orders(ref, order_id))[0].status is FS.cancelled
    assert (await level(ref, store, (await _any_material(ref, fo.id)))).reserved == 0
    await assert_ledger(ref)


async def _any_material(ref, fo_id: int) -> int:
    async with tenant_session(ref) as session:
        return await session.scalar(
            select(FulfillmentOrderLine.material_id)
            .where(FulfillmentOrderLine.fulfillment_order_id == fo_id)
            .limit(1)
        )
