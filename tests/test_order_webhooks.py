"""Channel webhooks over HTTP: signatures, idempotency under concurrent redelivery, failures kept for
replay, Shopify's own scheme, and tenant isolation through the channel secret."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

from sqlalchemy import func, select
from strawberry.relay import GlobalID

from app import inbox_replay
from app.db import control_session, get_db, tenant_session
from app.inbox import InboxMessage
from app.orders import doors
from app.orders.models import Order
from tests.catalog_ops import UPDATE_CHANNEL
from tests.door_support import (
    channel_tenant,
    count_orders,
    fixture,
    inbox_row,
    make_webhook_channel,
    oms_headers,
    post,
)
from tests.factories import tenant_ref


async def test_the_same_webhook_delivered_ten_times_at_once_is_one_order(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    body = fixture("generic", "order.json")
    headers = oms_headers(channel.webhook_secret, body)
    responses = await asyncio.gather(*(post(client, gid, body, headers) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    answers = [r.json() for r in responses]
    assert sorted(a["outcome"] for a in answers) == ["created"] + ["unchanged"] * 9
    assert len({a["order"]["id"] for a in answers}) == 1
    assert len({a["inboxId"] for a in answers}) == 10  # every delivery is kept
    assert await count_orders(tenant_a, channel.id) == 1
    order_gid = GlobalID.from_id(answers[0]["order"]["id"])
    tenant_id = GlobalID.from_id(tenant_a.tenant_id).node_id
    assert order_gid.type_name == "Order" and order_gid.node_id.startswith(f"{tenant_id}.")
    assert answers[0]["order"]["number"]
    for answer in answers:
        stored = await inbox_row(answer["inboxId"])
        assert (stored.status.value, stored.source, stored.attempts) == (
            "processed",
            f"channel:{channel.id}",
            1,
        )
        assert stored.body == body and stored.tenant_id == int(tenant_id)


async def test_a_tampered_or_missing_signature_is_refused_and_kept_as_rejected(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    body = fixture("generic", "order.json")
    headers = oms_headers(channel.webhook_secret, body)
    tampered = body.replace(b'"399.00"', b'"1.00"')
    refused = await post(client, gid, tampered, headers)
    assert refused.status_code == 401
    stored = await inbox_row(refused.json()["inboxId"])
    assert (stored.status.value, stored.body) == ("rejected", tampered)
    assert stored.error == "X-OMS-Signature does not match the body"

    missing = await post(client, gid, body, {"content-type": "application/json"})
    assert missing.status_code == 401 and missing.json()["error"] == "X-OMS-Signature is missing"
    assert (await inbox_row(missing.json()["inboxId"])).status.value == "rejected"
    assert await count_orders(tenant_a, channel.id) == 0


async def test_timestamped_signatures_expire_after_five_minutes(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    body = fixture("generic", "order.json")
    fresh = await post(client, gid, body, oms_headers(channel.webhook_secret, body, str(int(time.time()))))
    assert fresh.status_code == 200, fresh.text
    old = str(int(time.time()) - 600)
    stale = await post(client, gid, body, oms_headers(channel.webhook_secret, body, old))
    assert stale.status_code == 401 and "X-OMS-Timestamp" in stale.json()["error"]
    # The timestamp is signed: swapping a fresh one onto an old signature does not pass either.
    swapped = {**oms_headers(channel.webhook_secret, body, old), "X-OMS-Timestamp": str(int(time.time()))}
    assert (await post(client, gid, body, swapped)).status_code == 401


async def test_a_payload_that_cannot_be_parsed_is_kept_as_failed_and_replays_the_same(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    broken = b'{"format": "oms.order.v1", "id": "WEB-1",'
    answer = await post(client, gid, broken, oms_headers(channel.webhook_secret, broken))
    assert answer.status_code == 202  # stored safely: the sender should not resend it
    payload = answer.json()
    assert payload["status"] == "failed" and payload["order"] is None
    assert payload["error"].startswith("$: payload is not valid JSON")
    stored = await inbox_row(payload["inboxId"])
    assert (stored.status.value, stored.error, stored.attempts) == ("failed", payload["error"], 1)

    again = await inbox_replay.replay(get_db(), await tenant_ref(tenant_a.slug), payload["inboxId"])
    assert (again.status, again.error) == ("failed", payload["error"])  # the stored bytes cannot change
    assert (await inbox_row(payload["inboxId"])).attempts == 2

    body = fixture("generic", "malformed.json")
    answer = await post(client, gid, body, oms_headers(channel.webhook_secret, body))
    assert answer.status_code == 202
    assert answer.json()["error"] == "lines[0].unit_price: '399.999' has more than two decimal places"
    assert await count_orders(tenant_a, channel.id) == 0


async def test_an_inactive_channel_keeps_signed_payloads_for_replay_after_reactivation(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    off = await gql(UPDATE_CHANNEL, {"input": {"id": gid, "active": False}}, token=tenant_a.token)
    assert off["updateChannel"]["userErrors"] == []
    body = fixture("generic", "order.json")
    answer = await post(client, gid, body, oms_headers(channel.webhook_secret, body))
    assert answer.status_code == 404
    assert answer.json()["status"] == "failed" and "inactive" in answer.json()["error"]
    # A bad signature on an inactive channel is answered as for a channel that does not exist, and kept
    # nowhere: it proves nothing, and the channel takes no orders.
    forged = await post(client, gid, body, oms_headers("whsec_wrong", body))
    unknown = await post(client, str(GlobalID("Channel", f"{channel_tenant(gid)}.987654")), body, {})
    assert (forged.status_code, forged.content) == (404, unknown.content)
    assert forged.json()["inboxId"] is None

    on = await gql(UPDATE_CHANNEL, {"input": {"id": gid, "active": True}}, token=tenant_a.token)
    assert on["updateChannel"]["userErrors"] == []
    replayed = await inbox_replay.replay(get_db(), await tenant_ref(tenant_a.slug), answer.json()["inboxId"])
    assert (replayed.status, replayed.outcome) == ("processed", "created")
    assert await count_orders(tenant_a, channel.id) == 1
    stored = await inbox_row(answer.json()["inboxId"])
    assert (stored.status.value, stored.attempts, stored.error) == ("processed", 2, None)


async def test_shopify_channels_accept_shopifys_own_signature(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a, "shopify")

    def shopify(body: bytes, topic: str) -> dict[str, str]:
        digest = hmac.new(channel.webhook_secret.encode(), body, hashlib.sha256).digest()
        return {
            "content-type": "application/json",
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": "example.myshopify.com",
        }

    body = fixture("shopify", "order.json")
    created = await post(client, gid, body, shopify(body, "orders/create"))
    assert created.status_code == 200, created.text
    assert created.json()["outcome"] == "created"
    assert created.json()["order"]["number"]

    cancel = fixture("shopify", "cancel.json")
    cancelled = await post(client, gid, cancel, shopify(cancel, "orders/cancelled"))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["order"]["id"] == created.json()["order"]["id"]
    assert cancelled.json()["order"]["status"] == "cancelled"

    refund = fixture("shopify", "refund.json")
    stored = await post(client, gid, refund, shopify(refund, "refunds/create"))
    assert stored.status_code == 200 and stored.json()["outcome"] == "refund_stored"
    assert "refund" in (await inbox_row(stored.json()["inboxId"])).error  # the note says what was kept

    other = await post(client, gid, b"{}", shopify(b"{}", "products/update"))
    assert other.status_code == 200 and other.json()["outcome"] == "ignored"

    bad = shopify(body, "orders/create") | {"X-Shopify-Hmac-Sha256": base64.b64encode(b"x" * 32).decode()}
    refused = await post(client, gid, body, bad)
    assert refused.status_code == 401
    assert (
        await inbox_row(refused.json()["inboxId"])
    ).error == "X-Shopify-Hmac-Sha256 does not match the body"
    assert await count_orders(tenant_a, channel.id) == 1


async def test_generic_payloads_say_what_they_are_and_others_use_kind(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    for name, outcome in (("order.json", "created"), ("cancel.json", "cancelled"), ("refund.json", None)):
        body = fixture("generic", name)
        answer = await post(client, gid, body, oms_headers(channel.webhook_secret, body))
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == (outcome or "refund_stored")

    # Taobao says nothing about the event in its payload: ?kind= does, and is stored with it. This cancel
    # arrives before its order (trade ...1111), fails, and succeeds on replay once the order is in.
    tgid, taobao = await make_webhook_channel(gql, tenant_a, "taobao")
    cancel = fixture("taobao", "cancel.json")
    early = await post(client, tgid, cancel, oms_headers(taobao.webhook_secret, cancel), kind="cancel")
    assert early.status_code == 202 and early.json()["error"] == "order not found"
    assert (await inbox_row(early.json()["inboxId"])).headers["x-oms-event"] == "cancel"
    order = fixture("taobao", "order.json").replace(b"2045678912345678901", b"2045678999900001111")
    created = await post(client, tgid, order, oms_headers(taobao.webhook_secret, order))
    assert (created.status_code, created.json()["outcome"]) == (200, "created"), created.text
    replayed = await inbox_replay.replay(get_db(), await tenant_ref(tenant_a.slug), early.json()["inboxId"])
    assert (replayed.status, replayed.outcome, replayed.kind) == ("processed", "cancelled", "cancel")
    assert replayed.order_id is not None and replayed.order_status == "cancelled"

    # An unknown ?kind= is the caller's mistake, refused before anything is stored; the same word in the
    # X-OMS-Event header travels with the payload, so that payload is stored and fails saying why.
    answer = await post(client, tgid, cancel, oms_headers(taobao.webhook_secret, cancel), kind="exchange")
    assert (answer.status_code, answer.json()["inboxId"]) == (400, None)
    assert answer.json()["error"] == "kind must be one of order, cancel, refund"
    headers = {**oms_headers(taobao.webhook_secret, cancel), "X-OMS-Event": "exchange"}
    answer = await post(client, tgid, cancel, headers)
    assert answer.status_code == 202
    assert answer.json()["error"] == "X-OMS-Event: 'exchange' is not one of order, cancel, refund"


async def test_another_tenants_secret_or_a_forged_id_never_reaches_a_tenant(client, gql, make_tenant):
    a, b = await make_tenant("a"), await make_tenant("b")
    a_gid, a_channel = await make_webhook_channel(gql, a)
    _, a_second = await make_webhook_channel(gql, a)
    b_gid, b_channel = await make_webhook_channel(gql, b)
    a_tenant, b_tenant = (int(GlobalID.from_id(t.tenant_id).node_id) for t in (a, b))
    body = fixture("generic", "order.json")

    # A's channel, body signed with B's channel secret: refused, kept as rejected under A.
    refused = await post(client, a_gid, body, oms_headers(b_channel.webhook_secret, body))
    assert refused.status_code == 401
    stored = await inbox_row(refused.json()["inboxId"])
    assert (stored.status.value, stored.tenant_id) == ("rejected", a_tenant)

    # A global id edited to name B's tenant with a row B does not have: 404, and nothing kept anywhere.
    assert a_second.id != b_channel.id
    forged = str(GlobalID("Channel", f"{b_tenant}.{a_second.id}"))
    missing = await post(client, forged, body, oms_headers(a_second.webhook_secret, body))
    assert missing.status_code == 404 and missing.json()["error"] == "unknown channel"
    assert missing.json()["inboxId"] is None

    # ...and naming B's tenant with a row B does have: B's own secret decides, so A's secret fails.
    assert a_channel.id == b_channel.id  # row ids are per schema
    same_row = str(GlobalID("Channel", f"{b_tenant}.{a_channel.id}"))
    assert same_row == b_gid
    assert (
        await post(client, same_row, body, oms_headers(a_channel.webhook_secret, body))
    ).status_code == 401
    assert await count_orders(a) == 0 and await count_orders(b) == 0

    # Only the right pair goes through, and lands in that tenant alone.
    assert (await post(client, b_gid, body, oms_headers(b_channel.webhook_secret, body))).status_code == 200
    assert (await count_orders(a), await count_orders(b)) == (0, 1)


async def test_garbage_ids_unknown_tenants_and_huge_bodies(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    body = fixture("generic", "order.json")
    headers = oms_headers(channel.webhook_secret, body)
    nobody = str(GlobalID("Channel", f"999999999.{channel.id}"))
    answer = await post(client, nobody, body, headers)
    assert answer.status_code == 404 and answer.json()["inboxId"] is None  # no tenant to keep it for
    for bad in (
        "nonsense",
        str(GlobalID("Order", "1.1")),
        str(GlobalID("Channel", "1")),
        str(GlobalID("Channel", "².1")),
    ):
        refused = await post(client, bad, body, headers)
        assert (refused.status_code, refused.content) == (404, answer.content)  # all alike
    huge = b"{" + b" " * doors.MAX_BODY + b"}"
    assert (await post(client, gid, huge, oms_headers(channel.webhook_secret, huge))).status_code == 413
    assert (await client.get(f"/webhooks/channels/{gid}")).status_code == 405
    assert json.loads((await post(client, gid, body, headers)).text)["status"] == "processed"


async def test_a_burst_is_stored_in_a_few_group_transactions_and_each_delivery_answered_as_alone(
    client, gql, make_tenant
):
    """Deliveries that arrive while their tenant's inbox store runs are authenticated and stored together
    (app.orders.arrivals): two channels and bad signatures of tenant A, and tenant B's own deliveries in
    the same burst, each get the answer and the inbox row a lone delivery would get, in its own tenant."""
    from sqlalchemy import event

    a, b = await make_tenant("a"), await make_tenant("b")
    (a_gid, a_one), (a_gid2, a_two), (b_gid, b_one) = [await make_webhook_channel(gql, t) for t in (a, a, b)]
    a_tenant, b_tenant = (int(GlobalID.from_id(t.tenant_id).node_id) for t in (a, b))
    sends: list[tuple[str, bytes, str, tuple[int, str, int]]] = []  # gid, body, secret, expected
    for i in range(12):
        body = json.dumps({**json.loads(fixture("generic", "order.json")), "id": f"BURST-{i}"}).encode()
        gid, channel = [(a_gid, a_one), (a_gid2, a_two), (b_gid, b_one)][i % 3]
        tenant = b_tenant if channel is b_one else a_tenant
        sends.append((gid, body, channel.webhook_secret, (200, "processed", tenant)))
    forged = fixture("generic", "order.json")
    sends.append((a_gid, forged, b_one.webhook_secret, (401, "rejected", a_tenant)))  # B's secret on A
    sends.append((b_gid, forged, "not the secret", (401, "rejected", b_tenant)))
    unknown = str(GlobalID("Channel", f"{a_tenant}.987654"))
    sends.append((unknown, forged, a_one.webhook_secret, (404, "rejected", None)))  # nothing kept

    inserts: list[str] = []

    def seen(conn, cursor, statement, *_args) -> None:
        if statement.startswith("INSERT INTO control.inbox"):
            inserts.append(statement)

    engine = get_db().engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        answers = await asyncio.gather(
            *(post(client, gid, body, oms_headers(secret, body)) for gid, body, secret, _ in sends)
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    for answer, (*_, expected) in zip(answers, sends, strict=True):
        inbox_id = answer.json()["inboxId"]
        stored = await inbox_row(inbox_id) if inbox_id is not None else None
        got = (answer.status_code, answer.json()["status"], stored and stored.tenant_id)
        assert got == expected, answer.text
        assert stored is None or stored.status.value == expected[1]
    assert len(inserts) <= 6, len(inserts)  # 15 deliveries, 2 tenants: grouped, not one per request
    assert (await count_orders(a), await count_orders(b)) == (8, 4)

    # A secret rotated between two deliveries counts at once: groups read secrets fresh, never cached.
    rotate = """mutation($input: RotateChannelWebhookSecretInput!) {
      rotateChannelWebhookSecret(input: $input) { userErrors { code } } }"""
    await gql(rotate, {"input": {"id": a_gid}}, token=a.token)
    body = json.dumps({**json.loads(forged), "id": "AFTER-ROTATION"}).encode()
    assert (await post(client, a_gid, body, oms_headers(a_one.webhook_secret, body))).status_code == 401


async def test_ack_stored_answers_once_stored_and_ingests_after_the_answer(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    body = json.dumps({**json.loads(fixture("generic", "order.json")), "id": "ACK-STORED-1"}).encode()
    answer = await post(client, gid, body, oms_headers(channel.webhook_secret, body), ack="stored")
    assert answer.status_code == 202, answer.text
    assert (answer.json()["status"], answer.json()["order"]) == ("received", None)
    await doors.settle()  # the ingest ran after the answer, in the same process
    stored = await inbox_row(answer.json()["inboxId"])
    assert (stored.status.value, stored.error) == ("processed", None)
    assert await count_orders(tenant_a, channel.id) == 1

    # Anything but processed|stored is the sender's mistake: 400, nothing kept, no order.
    other = json.dumps({**json.loads(body), "id": "ACK-BAD"}).encode()
    bad = await post(client, gid, other, oms_headers(channel.webhook_secret, other), ack="later")
    assert bad.status_code == 400 and bad.json()["error"] == "ack must be one of processed, stored"
    assert bad.json()["inboxId"] is None
    await doors.settle()
    assert await count_orders(tenant_a, channel.id) == 1


async def test_the_inbox_sweep_replays_stale_received_payloads_each_in_its_own_tenant(gql, make_tenant):
    """A payload stored but never ingested (the process died in between) is replayed by the minute cron
    once stale, in the tenant that stored it; a fresh one is left alone, and a second sweep does nothing."""
    from datetime import timedelta

    from sqlalchemy import update

    from app import inbox
    from app.inbox_replay import inbox_sweep

    a, b = await make_tenant("a"), await make_tenant("b")
    (_, a_channel), (_, b_channel) = [await make_webhook_channel(gql, t) for t in (a, b)]
    a_tenant, b_tenant = (int(GlobalID.from_id(t.tenant_id).node_id) for t in (a, b))

    def order(external_id: str) -> bytes:
        return json.dumps({**json.loads(fixture("generic", "order.json")), "id": external_id}).encode()

    rows = [
        inbox.row(source=f"channel:{a_channel.id}", body=order("SWEPT-A"), tenant_id=a_tenant),
        inbox.row(source=f"channel:{b_channel.id}", body=order("SWEPT-B"), tenant_id=b_tenant),
        inbox.row(source=f"channel:{a_channel.id}", body=order("FRESH-A"), tenant_id=a_tenant),
    ]
    async with control_session() as session:
        stale_a, stale_b, fresh = await inbox.store_many(session, rows)
        await session.execute(
            update(InboxMessage)
            .where(InboxMessage.id.in_([stale_a, stale_b]))
            .values(received_at=func.now() - timedelta(minutes=3))
        )

    await inbox_sweep({"db": get_db()})
    assert [(await inbox_row(i)).status.value for i in (stale_a, stale_b, fresh)] == [
        "processed",
        "processed",
        "received",
    ]
    for tenant, channel, external_id in ((a, a_channel, "SWEPT-A"), (b, b_channel, "SWEPT-B")):
        async with tenant_session(await tenant_ref(tenant.slug)) as session:
            found = (
                await session.scalars(select(Order.external_id).where(Order.channel_id == channel.id))
            ).all()
        assert found == [external_id]
    await inbox_sweep({"db": get_db()})  # nothing left to do: still one order each
    assert (await count_orders(a), await count_orders(b)) == (1, 1)
