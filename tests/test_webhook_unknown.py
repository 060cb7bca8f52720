"""Webhook doors against strangers: every id that reaches no channel (or no connector) gets one and the
same answer, byte for byte, and nothing is stored; refused signatures on a real channel are kept for
audit only within a budget per sender (then 429 with Retry-After, nothing stored)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select, update
from strawberry.relay import GlobalID

from app.db import control_session
from app.inbox import InboxMessage
from app.rejections import BUDGET, WINDOW_S
from tenants.auth import tenant_cache
from tenants.models import Tenant, TenantStatus
from tests.catalog_ops import UPDATE_CHANNEL
from tests.door_support import channel_tenant, fixture, make_webhook_channel, oms_headers, post
from tests.factories import tenant_ref
from tests.orders_api_support import INBOX
from tests.routing_support import ERRORS, connect, gid, sign, warehouse

BODY = fixture("generic", "order.json")
WMS = "https://wms.example.com/hook"
ALL = {"status": ["received", "processed", "failed", "rejected"], "first": 100}


async def inbox_rows() -> int:
    async with control_session() as session:
        return await session.scalar(select(func.count()).select_from(InboxMessage))


def relay_id(type_name: str, node_id: str) -> str:
    return str(GlobalID(type_name, node_id))


async def suspend(tenant) -> None:
    tenant_id = int(GlobalID.from_id(tenant.tenant_id).node_id)
    async with control_session() as session:
        await session.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(status=TenantStatus.suspended)
        )
    tenant_cache.forget(tenant_id)


async def test_every_channel_id_that_reaches_nothing_gets_one_answer_and_stores_nothing(
    client, gql, make_tenant
):
    a, gone = await make_tenant("a"), await make_tenant("gone")
    a_gid, a_channel = await make_webhook_channel(gql, a)
    off_gid, _ = await make_webhook_channel(gql, a)
    off = await gql(UPDATE_CHANNEL, {"input": {"id": off_gid, "active": False}}, token=a.token)
    assert off["updateChannel"]["userErrors"] == []
    gone_gid, gone_channel = await make_webhook_channel(gql, gone)
    await suspend(gone)
    t = channel_tenant(a_gid)
    wrong = oms_headers("whsec_not_the_secret", BODY)
    shapes = {  # id -> headers (signed right where a secret exists, to show the signature does not matter)
        "nonsense": wrong,
        str(GlobalID("Order", f"{t}.{a_channel.id}")): wrong,
        str(GlobalID("Channel", "1")): wrong,
        str(GlobalID("Channel", "².1")): wrong,
        str(GlobalID("Channel", f"999999999.{a_channel.id}")): wrong,  # no such tenant
        str(GlobalID("Channel", f"{t}.987654")): oms_headers(a_channel.webhook_secret, BODY),  # no channel
        gone_gid: oms_headers(gone_channel.webhook_secret, BODY),  # a suspended tenant, signed right
        off_gid: wrong,  # an inactive channel, not signed by its secret
    }
    before = await inbox_rows()
    answers = [await post(client, channel_id, BODY, headers) for channel_id, headers in shapes.items()]
    answers += [await post(client, channel_id, BODY, {}) for channel_id in shapes]  # and unsigned
    assert {(r.status_code, r.content) for r in answers} == {(answers[0].status_code, answers[0].content)}
    assert answers[0].status_code == 404
    assert answers[0].json() == {
        "inboxId": None,
        "status": "rejected",
        "outcome": None,
        "order": None,
        "error": "unknown channel",
    }
    assert {r.headers["content-length"] for r in answers} == {answers[0].headers["content-length"]}
    assert await inbox_rows() == before
    assert (await gql(INBOX, ALL, token=a.token))["inboxMessages"]["edges"] == []


async def test_every_location_id_that_reaches_no_connector_gets_one_answer_and_stores_nothing(
    client, gql, make_tenant
):
    a, gone = await make_tenant("a"), await make_tenant("gone")
    ref, gone_ref = await tenant_ref(a.slug), await tenant_ref(gone.slug)
    here, bare, off = [await warehouse(ref, name, None) for name in ("WH", "WH bare", "WH off")]
    secret = await connect(gql, a, ref, here, WMS)
    off_secret = await connect(gql, a, ref, off, WMS)
    turn_off = f"""mutation($input: SetLocationConnectorInput!) {{
      setLocationConnector(input: $input) {{ connector {{ active }} {ERRORS} }} }}"""
    done = await gql(
        turn_off,
        {"input": {"locationId": gid("Location", ref, off), "url": WMS, "active": False}},
        api_key=a.api_key,
    )
    assert done["setLocationConnector"]["userErrors"] == []
    gone_here = await warehouse(gone_ref, "WH gone", None)
    gone_secret = await connect(gql, gone, gone_ref, gone_here, WMS)
    await suspend(gone)
    body = json.dumps({"event": "accepted", "fulfillment_order_id": gid("FulfillmentOrder", ref, 1)}).encode()
    wrong = sign("whsec_not_the_secret", body)
    shapes = {
        "nonsense": wrong,
        gid("Order", ref, here): sign(secret, body),
        gid("Location", ref, 987654): sign(secret, body),  # no such location
        relay_id("Location", f"999999999.{here}"): sign(secret, body),  # no such tenant
        gid("Location", ref, bare): sign(secret, body),  # a location without a connector
        gid("Location", ref, off): wrong,  # an inactive connector, not signed by its secret
        gid("Location", gone_ref, gone_here): sign(gone_secret, body),  # a suspended tenant, signed right
    }
    before = await inbox_rows()
    answers = [
        await client.post(f"/webhooks/fulfilment/{location}", content=body, headers=headers)
        for location, headers in shapes.items()
    ]
    assert {(r.status_code, r.content) for r in answers} == {(answers[0].status_code, answers[0].content)}
    assert answers[0].status_code == 404
    assert answers[0].json() == {
        "inboxId": None,
        "status": "rejected",
        "fulfillmentOrder": None,
        "error": "unknown location",
    }
    assert await inbox_rows() == before
    assert (await gql(INBOX, ALL, token=a.token))["inboxMessages"]["edges"] == []

    # Signed by the inactive connector's own secret, the sender is known: told why, and kept for audit.
    signed = await client.post(
        f"/webhooks/fulfilment/{gid('Location', ref, off)}", content=body, headers=sign(off_secret, body)
    )
    assert signed.status_code == 404
    assert (signed.json()["status"], signed.json()["error"]) == (
        "rejected",
        "the location's connector is inactive",
    )
    assert await inbox_rows() == before + 1


async def test_refused_signatures_are_kept_within_a_budget_per_sender_then_429(app, client, gql, tenant_a):
    channel_gid, channel = await make_webhook_channel(gql, tenant_a)
    wrong = oms_headers("whsec_not_the_secret", BODY)
    before = await inbox_rows()
    for _ in range(BUDGET):
        refused = await post(client, channel_gid, BODY, wrong)
        assert (refused.status_code, refused.json()["status"]) == (401, "rejected")
        assert refused.json()["inboxId"] is not None  # kept for audit
    over = await post(client, channel_gid, BODY, wrong)
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= WINDOW_S
    assert over.json() == {"status": "rejected", "error": "too many refused deliveries; retry later"}
    assert await inbox_rows() == before + BUDGET  # the one past the budget is not kept
    rejected = await gql(INBOX, {**ALL, "status": ["rejected"]}, token=tenant_a.token)
    assert len(rejected["inboxMessages"]["edges"]) == BUDGET

    # The budget is the sender's: another address is still heard, and a right signature always is.
    other = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as elsewhere:
        assert (await post(elsewhere, channel_gid, BODY, wrong)).status_code == 401
    good = await post(client, channel_gid, BODY, oms_headers(channel.webhook_secret, BODY))
    assert (good.status_code, good.json()["status"]) == (200, "processed"), good.text

    # The fulfilment door keeps the same budget per location.
    ref = await tenant_ref(tenant_a.slug)
    here = await warehouse(ref, "WH", None)
    await connect(gql, tenant_a, ref, here, WMS)
    body = json.dumps({"event": "accepted", "fulfillment_order_id": gid("FulfillmentOrder", ref, 1)}).encode()
    url = f"/webhooks/fulfilment/{gid('Location', ref, here)}"
    codes = [
        (await client.post(url, content=body, headers=sign("whsec_wrong", body))).status_code
        for _ in range(BUDGET + 1)
    ]
    assert codes == [401] * BUDGET + [429]
