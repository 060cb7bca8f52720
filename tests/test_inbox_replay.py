"""Replay of stored payloads, the bulk door (ingest_many), and the `oms inbox` commands: a tenant only
ever sees and replays its own inbox rows."""

from __future__ import annotations

import json

import pytest
from strawberry.relay import GlobalID

from app import inbox_replay
from app.db import get_db
from app.errors import NotFound, UserError
from app.orders import doors
from tests.catalog_ops import UPDATE_CHANNEL
from tests.cli_support import oms
from tests.door_support import count_orders, fixture, inbox_row, make_webhook_channel, oms_headers, post
from tests.factories import tenant_ref


def generic_order(external_id: str, **changes) -> bytes:
    doc = json.loads(fixture("generic", "order.json"))
    doc.update(id=external_id, **changes)
    return json.dumps(doc, ensure_ascii=False).encode()


async def test_replay_of_another_tenants_row_is_not_found(client, gql, make_tenant):
    a, b = await make_tenant("a"), await make_tenant("b")
    gid, channel = await make_webhook_channel(gql, a)
    broken = b"{not json"
    failed = (await post(client, gid, broken, oms_headers(channel.webhook_secret, broken))).json()
    assert failed["status"] == "failed"

    with pytest.raises(NotFound):
        await inbox_replay.replay(get_db(), await tenant_ref(b.slug), failed["inboxId"])
    b_tenant_id = int(GlobalID.from_id(b.tenant_id).node_id)
    with pytest.raises(NotFound):
        await inbox_replay.replay(get_db(), b_tenant_id, failed["inboxId"])  # by tenant id as well
    assert (await inbox_row(failed["inboxId"])).attempts == 1  # untouched
    assert [m.id for m in await inbox_replay.list_inbox(get_db(), b_tenant_id)] == []

    cli = oms("inbox", "replay", str(failed["inboxId"]), "--tenant", b.slug)
    assert cli.returncode == 2 and "not found" in cli.stderr
    listed = oms("inbox", "list", "--tenant", b.slug)
    assert listed.returncode == 0 and str(failed["inboxId"]) not in listed.stdout
    listed = oms("inbox", "list", "--tenant", a.slug, "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    assert str(failed["inboxId"]) in listed.stdout and "not valid JSON" in listed.stdout


async def test_processed_and_rejected_rows_are_not_replayed(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    body = fixture("generic", "order.json")
    done = (await post(client, gid, body, oms_headers(channel.webhook_secret, body))).json()
    rejected = (await post(client, gid, body, oms_headers("whsec_someone_else", body))).json()
    for inbox_id, code in ((done["inboxId"], "ALREADY_PROCESSED"), (rejected["inboxId"], "NOT_REPLAYABLE")):
        with pytest.raises(UserError) as caught:
            await inbox_replay.replay(get_db(), await tenant_ref(tenant_a.slug), inbox_id)
        assert (caught.value.code, caught.value.field) == (code, ["id"])
    cli = oms("inbox", "replay", str(rejected["inboxId"]), "--tenant", tenant_a.slug)
    assert cli.returncode == 2 and "NOT_REPLAYABLE" in cli.stderr


async def test_replay_through_the_cli_after_the_channel_is_reactivated(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    await gql(UPDATE_CHANNEL, {"input": {"id": gid, "active": False}}, token=tenant_a.token)
    body = fixture("generic", "order.json")
    kept = (await post(client, gid, body, oms_headers(channel.webhook_secret, body))).json()
    assert kept["status"] == "failed"
    await gql(UPDATE_CHANNEL, {"input": {"id": gid, "active": True}}, token=tenant_a.token)

    replayed = oms("inbox", "replay", str(kept["inboxId"]), "--tenant", tenant_a.slug)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "processed" in replayed.stdout and "created" in replayed.stdout
    assert await count_orders(tenant_a, channel.id) == 1
    again = oms("inbox", "replay", str(kept["inboxId"]), "--tenant", tenant_a.slug)
    assert again.returncode == 2 and "ALREADY_PROCESSED" in again.stderr


async def test_ingest_many_keeps_good_orders_when_some_are_bad(gql, tenant_a):
    _, channel = await make_webhook_channel(gql, tenant_a)
    ref = await tenant_ref(tenant_a.slug)
    payloads = [
        generic_order("BULK-1"),
        b"{broken",
        generic_order("BULK-2", total="1.00"),  # the total check fails
        generic_order("BULK-3"),
        generic_order("BULK-1"),  # the same order again in the batch
        fixture("generic", "refund.json"),
    ]
    results = await doors.ingest_many(get_db(), ref, channel.id, payloads)
    assert [r.status for r in results] == [
        "processed",
        "failed",
        "failed",
        "processed",
        "processed",
        "processed",
    ]
    assert [r.outcome for r in results] == ["created", None, None, "created", "unchanged", "refund_stored"]
    assert results[0].order_id == results[4].order_id and results[0].number
    assert results[1].error.startswith("$: payload is not valid JSON")
    assert results[2].error.startswith("total: 1.00 differs from subtotal")
    assert await count_orders(tenant_a, channel.id) == 2
    for result, payload in zip(results, payloads, strict=True):
        stored = await inbox_row(result.inbox_id)
        assert (stored.status.value, stored.attempts, stored.body) == (result.status, 1, payload)
        assert stored.source == f"channel:{channel.id}"
    assert (await inbox_row(results[2].inbox_id)).error == results[2].error
    # A failed bulk row replays through the same path (and fails the same way: its bytes are fixed).
    again = await inbox_replay.replay(get_db(), ref, results[2].inbox_id)
    assert (again.status, again.error) == ("failed", results[2].error)


async def test_ingest_many_limits_and_foreign_channels(gql, make_tenant):
    a, b = await make_tenant("a"), await make_tenant("b")
    _, a_channel = await make_webhook_channel(gql, a)
    await make_webhook_channel(gql, b)
    _, b_second = await make_webhook_channel(gql, b)
    assert await doors.ingest_many(get_db(), await tenant_ref(a.slug), a_channel.id, []) == []
    with pytest.raises(UserError) as caught:
        await doors.ingest_many(
            get_db(), await tenant_ref(a.slug), a_channel.id, [b"{}"] * (doors.MAX_BATCH + 1)
        )
    assert caught.value.code == "TOO_MANY_PAYLOADS"
    with pytest.raises(UserError) as caught:
        await doors.ingest_many(
            get_db(), await tenant_ref(a.slug), a_channel.id, [b"{}", b" " * (doors.MAX_BODY + 1)]
        )
    assert (caught.value.code, caught.value.field) == ("PAYLOAD_TOO_LARGE", ["payloads", "1"])
    # A channel id is a row of the caller's own schema: B's second channel does not exist in A.
    with pytest.raises(NotFound):
        await doors.ingest_many(get_db(), await tenant_ref(a.slug), b_second.id, [generic_order("X-1")])
    assert await count_orders(a) == 0 and await count_orders(b) == 0


async def test_ingest_many_on_an_inactive_channel_fails_each_row_for_replay(gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    await gql(UPDATE_CHANNEL, {"input": {"id": gid, "active": False}}, token=tenant_a.token)
    ref = await tenant_ref(tenant_a.slug)
    results = await doors.ingest_many(
        get_db(), ref, channel.id, [generic_order("IN-1"), generic_order("IN-2")]
    )
    assert [r.status for r in results] == ["failed", "failed"]
    assert all("inactive" in r.error for r in results)
    await gql(UPDATE_CHANNEL, {"input": {"id": gid, "active": True}}, token=tenant_a.token)
    replayed = [await inbox_replay.replay(get_db(), ref, r.inbox_id) for r in results]
    assert [(r.status, r.outcome) for r in replayed] == [("processed", "created")] * 2
    assert await count_orders(tenant_a, channel.id) == 2


async def test_a_row_stored_but_never_processed_is_replayed(gql, tenant_a):
    """The process died between storing and processing: the row stays `received` and replays."""
    from app.db import control_session
    from app.inbox import store

    _, channel = await make_webhook_channel(gql, tenant_a)
    body = generic_order("CRASH-1")
    async with control_session() as session:
        inbox_id = (
            await store(
                session, source=f"channel:{channel.id}", body=body, tenant_id=channel_tenant(tenant_a)
            )
        ).id
    result = await inbox_replay.replay(get_db(), await tenant_ref(tenant_a.slug), inbox_id)
    assert (result.status, result.outcome) == ("processed", "created")
    assert (await inbox_row(inbox_id)).attempts == 1


def channel_tenant(tenant) -> int:
    return int(GlobalID.from_id(tenant.tenant_id).node_id)


async def test_ingest_many_takes_the_kind_for_platforms_whose_payloads_do_not_say(gql, tenant_a):
    _, taobao = await make_webhook_channel(gql, tenant_a, "taobao")
    ref = await tenant_ref(tenant_a.slug)
    order = fixture("taobao", "order.json").replace(b"2045678912345678901", b"2045678999900001111")
    [created] = await doors.ingest_many(get_db(), ref, taobao.id, [order.decode()])
    [cancelled] = await doors.ingest_many(
        get_db(), ref, taobao.id, [fixture("taobao", "cancel.json")], kind="cancel"
    )
    assert (created.outcome, cancelled.outcome, cancelled.order_id) == (
        "created",
        "cancelled",
        created.order_id,
    )
    assert (await inbox_row(cancelled.inbox_id)).headers == {"x-oms-event": "cancel"}
