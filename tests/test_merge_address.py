"""Editing the address of a merged order (``editOrderAddress``): a new address that no longer matches
the merge's takes the order out of it (the merge of two is dissolved, both timelines say so, each order
is routed again on its own); an address that still matches keeps the merge; once the merge was handed
to a location the edit is refused; another tenant cannot edit the order."""

from __future__ import annotations

from sqlalchemy import update

from app.db import get_db
from app.fulfillment.models import FulfillmentStatus
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from tests.factories import tenant_ref
from tests.merge_support import ORDER_MERGE, STREET, live, merge_two, merges
from tests.routing_support import (
    ERRORS,
    assert_ledger,
    drain,
    events,
    fulfillment_orders,
    gid,
    order_of,
    run_delayed,
)

EDIT_ADDRESS = f"""mutation($input: EditOrderAddressInput!) {{ editOrderAddress(input: $input) {{
  order {{ id fingerprint shippingAddress {{ name street }} merge {{ id }} }} {ERRORS} }} }}"""
ELSEWHERE = "锦江区 红星路 88 号"


async def _edit(gql, tenant, ref, order_id: int, **address) -> dict:
    data = await gql(
        EDIT_ADDRESS,
        {"input": {"id": gid("Order", ref, order_id), "address": address}},
        api_key=tenant.api_key,
    )
    return data["editOrderAddress"]


async def _merge_of(gql, tenant, ref, order_id: int) -> dict | None:
    data = await gql(ORDER_MERGE, {"id": gid("Order", ref, order_id)}, api_key=tenant.api_key)
    return data["node"]["merge"]


async def test_an_address_that_no_longer_matches_takes_the_order_out_of_the_merge(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu, shanghai, _, a, b, _ = await merge_two(gql, tenant_a, ref, run_jobs, "READDR")
    [group] = await merges(ref)
    number_a, number_b = (await order_of(ref, a)).number, (await order_of(ref, b)).number

    payload = await _edit(gql, tenant_a, ref, a, street=ELSEWHERE)
    assert payload["userErrors"] == [] and payload["order"]["merge"] is None
    assert payload["order"]["shippingAddress"]["street"] == ELSEWHERE
    assert await _merge_of(gql, tenant_a, ref, b) is None  # a merge of two is dissolved
    [group] = await merges(ref)
    assert group.dissolved_at is not None

    # Both timelines say why; each order is routed again on its own (A from Chengdu, the nearest).
    [left] = [e for e in await events(ref, a) if e.kind == "unmerged"]
    [stayed] = [e for e in await events(ref, b) if e.kind == "unmerged"]
    assert number_b in left.message and "address no longer matches" in left.message
    assert number_a in stayed.message and "address no longer matches" in stayed.message
    await drain(run_jobs)
    assert [f.location_id for f in await live(ref, a)] == [chengdu]
    assert [f.location_id for f in await live(ref, b)] == [shanghai]
    order_a, order_b = await order_of(ref, a), await order_of(ref, b)
    assert order_a.status is order_b.status is OrderStatus.routed
    assert order_a.merge_id is None and order_b.merge_id is None
    assert order_a.unmerged_at is None  # not an operator's undo: it may merge at its new address
    await run_delayed(ref, run_jobs)
    await assert_ledger(ref)


async def test_an_address_that_still_matches_keeps_the_merge(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    *_, a, b, _ = await merge_two(gql, tenant_a, ref, run_jobs, "SAME")
    [group] = await merges(ref)
    fos = {order_id: await live(ref, order_id) for order_id in (a, b)}

    # Another recipient name and the same street spelled with other spaces: the same address.
    spaced = "  " + STREET.replace(" ", "   ") + " "
    payload = await _edit(gql, tenant_a, ref, a, name="王小明", street=spaced)
    assert payload["userErrors"] == [] and payload["order"]["shippingAddress"]["name"] == "王小明"
    assert payload["order"]["merge"] == {"id": gid("OrderMerge", ref, group.id)}
    await drain(run_jobs)
    for order_id in (a, b):
        assert (await order_of(ref, order_id)).merge_id == group.id
        still = [(f.id, f.status) for f in await live(ref, order_id)]
        assert still == [(f.id, f.status) for f in fos[order_id]]
        assert not [e for e in await events(ref, order_id) if e.kind == "unmerged"]
    assert (await merges(ref))[0].dissolved_at is None
    await run_delayed(ref, run_jobs)
    await assert_ledger(ref)


async def test_an_address_edit_is_refused_once_the_merge_was_handed_over(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    *_, a, b, _ = await merge_two(gql, tenant_a, ref, run_jobs, "HANDED")
    # Only B's fulfilment order is handed over (no connector: assigned by hand); A is still routed.
    [fo_b] = await live(ref, b)
    async with get_db().control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == ref.id,
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.kwargs["fulfillment_order_id"].as_integer() == fo_b.id,
            )
            .values(available_at=OutboxMessage.created_at)
        )
    await drain(run_jobs)
    assert [f.status for f in await fulfillment_orders(ref, b)] == [FulfillmentStatus.assigned]
    order_a = await order_of(ref, a)
    assert order_a.status is OrderStatus.routed

    payload = await _edit(gql, tenant_a, ref, a, street=ELSEWHERE)
    assert payload["order"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("ADDRESS_LOCKED", ["address"])
    assert "handed to a location" in error["message"]
    # Nothing changed: the address, the merge, A's fulfilment order.
    after = await order_of(ref, a)
    assert after.address == order_a.address and after.fingerprint == order_a.fingerprint
    assert after.merge_id == order_a.merge_id is not None
    assert [e.kind for e in await events(ref, a) if e.kind in ("address", "unmerged")] == []
    assert [f.status for f in await live(ref, a)] == [FulfillmentStatus.pending]
    await run_delayed(ref, run_jobs)
    await assert_ledger(ref)


async def test_another_tenant_cannot_edit_the_address_of_a_merged_order(gql, tenant_a, tenant_b, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    *_, a, _, _ = await merge_two(gql, tenant_a, ref, run_jobs, "XTADDR")
    before = await order_of(ref, a)
    payload = await _edit(gql, tenant_b, ref, a, street=ELSEWHERE)
    assert payload["order"] is None and [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    after = await order_of(ref, a)
    assert after.address == before.address and after.merge_id == before.merge_id is not None
    assert not [e for e in await events(ref, a) if e.kind in ("address", "unmerged")]
    await run_delayed(ref, run_jobs)
