"""Fulfilment: connector deliveries (retried with backoff through the outbox when the connector is down,
idempotent on the delivery), callbacks (signatures, skipped and repeated steps, illegal ones, payload
errors, all kept in the inbox), connector settings, and cancelling open fulfilment orders."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app import inbox_replay, signing
from app.db import control_session, get_db, tenant_session
from app.errors import UserError
from app.fulfillment import connectors
from app.fulfillment import jobs as fulfilment_jobs
from app.fulfillment import service as fulfillment
from app.fulfillment.models import ConnectorDelivery, DeliveryStatus, FulfillmentStatus
from app.inbox import InboxMessage
from app.orders.models import Order, OrderStatus
from app.outbox import OutboxMessage
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    ConnectorServer,
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
    warehouse,
)


async def _routed_order(gql, tenant, run_jobs, server: ConnectorServer, external_id: str):
    ref = await tenant_ref(tenant.slug)
    here = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {here: 5})
    secret = await connect(gql, tenant, ref, here, server.url)
    order_id = await ingest(shop, external_id)
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    return ref, here, shop, secret, order_id, fo


async def _delivery(ref, fo_id: int) -> ConnectorDelivery:
    async with tenant_session(ref) as session:
        return await session.scalar(
            select(ConnectorDelivery).where(ConnectorDelivery.fulfillment_order_id == fo_id)
        )


async def _retry_rows(ref, fo_id: int) -> list[OutboxMessage]:
    async with control_session() as session:
        query = select(OutboxMessage).where(
            OutboxMessage.tenant_id == ref.id,
            OutboxMessage.job == "release_fulfilment",
            OutboxMessage.kwargs["fulfillment_order_id"].as_integer() == fo_id,
            OutboxMessage.kwargs["attempt"].is_not(None),
        )
        return list((await session.scalars(query.order_by(OutboxMessage.id))).all())


async def test_a_connector_that_is_down_is_retried_later_through_the_outbox(
    gql, tenant_a, run_jobs, connector_server
):
    connector_server.status = 503
    ref, _, _, secret, order_id, fo = await _routed_order(gql, tenant_a, run_jobs, connector_server, "DOWN-1")
    assert fo.status is FulfillmentStatus.pending
    assert (await order_of(ref, order_id)).status is OrderStatus.routed
    delivery = await _delivery(ref, fo.id)
    assert delivery.status is DeliveryStatus.failed and delivery.attempts == 1
    assert (delivery.response_code, delivery.last_error) == (503, "HTTP 503")  # never the answer's body
    assert delivery.next_attempt_at is not None
    [retry] = await _retry_rows(ref, fo.id)
    assert retry.kwargs == {"fulfillment_order_id": fo.id, "attempt": 2} and retry.sent_at is None
    async with control_session() as session:
        wait = await session.scalar(
            select(OutboxMessage.available_at - func.now()).where(OutboxMessage.id == retry.id)
        )
    assert timedelta(seconds=50) < wait <= timedelta(minutes=1)
    assert any("retrying in 1 min" in e.message for e in await events(ref, order_id))

    # The first job delivered again does nothing (its attempt was made); the retry, once due, sends.
    again = await fulfilment_jobs.release_fulfilment(
        {}, outbox_id=1, tenant_id=ref.id, fulfillment_order_id=fo.id
    )
    assert again == "duplicate" and len(connector_server.requests) == 1
    connector_server.status = 200
    async with control_session() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == retry.id).values(available_at=func.now())
        )
    await drain(run_jobs)
    delivery = await _delivery(ref, fo.id)
    assert (
        delivery.status is DeliveryStatus.sent and delivery.attempts == 2 and delivery.next_attempt_at is None
    )
    assert len(connector_server.requests) == 2
    first, second = (json.loads(body) for _, body in connector_server.requests)
    assert first == second and first["delivery_id"] == delivery.id  # the same message, signed the same way
    for headers, body in connector_server.requests:
        assert headers["x-oms-signature"] == sign(secret, body)["X-OMS-Signature"]
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.assigned
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    replay = await fulfilment_jobs.release_fulfilment(
        {}, outbox_id=retry.id, tenant_id=ref.id, fulfillment_order_id=fo.id, attempt=2
    )
    assert replay == "already_sent" and len(connector_server.requests) == 2


async def test_after_the_last_attempt_it_gives_up_and_says_so(gql, tenant_a, run_jobs, connector_server):
    connector_server.status = 500
    ref, _, _, _, order_id, fo = await _routed_order(gql, tenant_a, run_jobs, connector_server, "GIVEUP-1")
    async with tenant_session(ref) as session:
        await session.execute(
            update(ConnectorDelivery)
            .where(ConnectorDelivery.fulfillment_order_id == fo.id)
            .values(attempts=connectors.MAX_ATTEMPTS - 1)
        )
    outcome = await fulfilment_jobs.release_fulfilment(
        {}, outbox_id=1, tenant_id=ref.id, fulfillment_order_id=fo.id, attempt=connectors.MAX_ATTEMPTS
    )
    assert outcome == "failed"
    delivery = await _delivery(ref, fo.id)
    assert delivery.attempts == connectors.MAX_ATTEMPTS and delivery.next_attempt_at is None
    assert len(await _retry_rows(ref, fo.id)) == 1  # only the first retry; none after the last attempt
    assert any("gave up" in e.message for e in await events(ref, order_id))
    await run_delayed(ref, run_jobs)  # the earlier retry, once due, finds its attempt made
    assert (
        len(connector_server.requests) == 2
        and (await _delivery(ref, fo.id)).attempts == connectors.MAX_ATTEMPTS
    )


async def test_callbacks_skip_steps_repeat_harmlessly_and_never_go_back(
    client, gql, tenant_a, run_jobs, connector_server
):
    ref, here, shop, secret, order_id, fo = await _routed_order(
        gql, tenant_a, run_jobs, connector_server, "CB-1"
    )
    r = await callback(client, ref, here, secret, fo.id, "packed")  # accepted and picked never came
    assert r.status_code == 200 and r.json()["fulfillmentOrder"]["status"] == "packed"
    r = await callback(client, ref, here, secret, fo.id, "packed")
    assert r.status_code == 200
    r = await callback(client, ref, here, secret, fo.id, "accepted")
    assert r.status_code == 422 and "already packed" in r.json()["error"]
    # Delivered without a shipped callback: shipped first (stock consumed), then delivered.
    r = await callback(client, ref, here, secret, fo.id, "delivered", tracking_number="YT9")
    assert r.status_code == 200 and r.json()["fulfillmentOrder"]["status"] == "delivered"
    assert (await order_of(ref, order_id)).status is OrderStatus.delivered
    gloves = await level(ref, here, shop.materials["SKU-2002"])
    assert (gloves.on_hand, gloves.reserved) == (3, 0)
    r = await callback(client, ref, here, secret, fo.id, "rejected")
    assert r.status_code == 422
    await assert_ledger(ref)
    async with control_session() as session:
        rows = (
            await session.scalars(
                select(InboxMessage)
                .where(InboxMessage.tenant_id == ref.id, InboxMessage.source == f"fulfilment:{here}")
                .order_by(InboxMessage.id)
            )
        ).all()
    assert [m.status.value for m in rows] == ["processed", "processed", "failed", "processed", "failed"]
    assert rows[2].error.startswith("the fulfilment order is already packed")
    # A failed callback replays through the same path (and still fails: steps never go back, and the
    # fulfilment order is delivered by now).
    again = await inbox_replay.replay(get_db(), ref, rows[2].id)
    assert (again.status, again.error) == ("failed", "the fulfilment order is delivered")
    async with control_session() as session:
        assert (await session.get(InboxMessage, rows[2].id)).attempts == 2
    with pytest.raises(UserError) as done:
        await inbox_replay.replay(get_db(), ref, rows[1].id)
    assert done.value.code == "ALREADY_PROCESSED"


async def test_callbacks_with_bad_signatures_or_payloads_are_kept_and_refused(
    client, gql, tenant_a, run_jobs, connector_server
):
    ref, here, _, secret, order_id, fo = await _routed_order(
        gql, tenant_a, run_jobs, connector_server, "CB-2"
    )
    url = f"/webhooks/fulfilment/{gid('Location', ref, here)}"
    body = json.dumps(
        {"event": "accepted", "fulfillment_order_id": gid("FulfillmentOrder", ref, fo.id)}
    ).encode()
    bad = await client.post(url, content=body, headers=sign("whsec_wrong", body))
    assert bad.status_code == 401 and bad.json()["status"] == "rejected"
    missing = await client.post(url, content=body, headers={"content-type": "application/json"})
    assert missing.status_code == 401 and "missing" in missing.json()["error"]
    for payload, code in (
        (b"not json", 422),
        (json.dumps({"event": "teleported", "fulfillment_order_id": "x"}).encode(), 422),
        (json.dumps({"event": "accepted", "fulfillment_order_id": "garbage"}).encode(), 404),
        (
            json.dumps(
                {"event": "accepted", "fulfillment_order_id": gid("FulfillmentOrder", ref, 10**9)}
            ).encode(),
            404,
        ),
    ):
        r = await client.post(url, content=payload, headers=sign(secret, payload))
        assert r.status_code == code and r.json()["status"] == "failed", r.text
    assert (
        await client.post("/webhooks/fulfilment/nonsense", content=body, headers=sign(secret, body))
    ).status_code == 404
    async with control_session() as session:
        kept = (
            await session.scalars(
                select(InboxMessage.status)
                .where(InboxMessage.tenant_id == ref.id, InboxMessage.source == f"fulfilment:{here}")
                .order_by(InboxMessage.id)
            )
        ).all()
    assert [s.value for s in kept] == ["rejected", "rejected", "failed", "failed", "failed", "failed"]
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.assigned  # none of them changed anything


SET_CONNECTOR = f"""mutation($input: SetLocationConnectorInput!) {{
  setLocationConnector(input: $input) {{ secret connector {{ url active locationId }} {ERRORS} }} }}"""


async def test_a_connector_secret_is_shown_once_and_can_be_rotated(gql, tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    here = await warehouse(ref, "WH", CHENGDU)
    loc = gid("Location", ref, here)
    first = (
        await gql(
            SET_CONNECTOR,
            {"input": {"locationId": loc, "url": "https://wms.example.com/a"}},
            api_key=tenant_a.api_key,
        )
    )["setLocationConnector"]
    assert first["secret"].startswith("whsec_") and first["connector"]["locationId"] == loc
    moved = (
        await gql(
            SET_CONNECTOR,
            {"input": {"locationId": loc, "url": "https://wms.example.com/b"}},
            api_key=tenant_a.api_key,
        )
    )["setLocationConnector"]
    assert moved["secret"] is None and moved["connector"]["url"] == "https://wms.example.com/b"
    rotated = (
        await gql(
            SET_CONNECTOR,
            {"input": {"locationId": loc, "url": "https://wms.example.com/b", "rotateSecret": True}},
            api_key=tenant_a.api_key,
        )
    )["setLocationConnector"]
    assert rotated["secret"] not in (None, first["secret"])
    for url, code in (
        ("ftp://wms.example.com", "URL_NOT_ALLOWED"),  # tests/test_outbound_guard.py has the rest
        ("not a url", "INVALID_URL"),
        ("https://" + "x" * 600, "INVALID_URL"),
    ):
        bad = (
            await gql(SET_CONNECTOR, {"input": {"locationId": loc, "url": url}}, api_key=tenant_a.api_key)
        )["setLocationConnector"]
        assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [(code, ["url"])]
    r = await gql.raw(
        SET_CONNECTOR, {"input": {"locationId": loc, "url": "https://x.example.com"}}, token=None
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_cancelling_open_fulfilment_orders_gives_the_units_back_to_the_network(
    gql, tenant_a, run_jobs, connector_server
):
    ref, here, shop, _, order_id, fo = await _routed_order(
        gql, tenant_a, run_jobs, connector_server, "CANCEL-1"
    )
    async with tenant_session(ref) as session:
        order = await session.get(Order, order_id, with_for_update=True)
        assert (
            await fulfillment.cancel_open(session, order, reason="customer changed their mind", actor="ops")
            == 1
        )
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.cancelled
    assert (await level(ref, here, shop.materials["SKU-2002"])).reserved == 0
    await assert_ledger(ref)


def test_signatures_and_callback_payloads_are_checked():
    body = b'{"a":1}'
    good = signing.sign("s3cret", body)
    assert signing.signature_problem("s3cret", {"X-OMS-Signature": good}, body) is None
    assert "does not match" in signing.signature_problem("other", {"x-oms-signature": good}, body)
    stamped = {"X-OMS-Signature": signing.sign("s3cret", body, "1000"), "X-OMS-Timestamp": "1000"}
    assert signing.signature_problem("s3cret", stamped, body, now=1100) is None
    assert "seconds away" in signing.signature_problem("s3cret", stamped, body, now=5000)
    fo = connectors.global_id("FulfillmentOrder", 7, 3)
    cb = connectors.parse_callback(
        json.dumps({"event": "shipped", "fulfillment_order_id": fo, "carrier": "SF"}).encode(), 7
    )
    assert (cb.event, cb.fulfillment_order_id, cb.carrier, cb.adjust_stock) == ("shipped", 3, "SF", True)
    from app.errors import NotFound, UserError

    for raw, tenant, error in (
        (json.dumps({"event": "shipped", "fulfillment_order_id": fo}), 8, NotFound),  # another tenant's id
        (json.dumps({"event": "shipped", "fulfillment_order_id": fo, "parcels": "x"}), 7, UserError),
        (json.dumps({"event": "rejected", "fulfillment_order_id": fo, "adjust_stock": "no"}), 7, UserError),
        (json.dumps([1]), 7, UserError),
    ):
        try:
            connectors.parse_callback(raw.encode(), tenant)
        except error:
            pass
        else:
            raise AssertionError(raw)
