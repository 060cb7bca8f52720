"""Audit rules: each one holds an order when it fires, and lets it through when disabled, below the
threshold, or released by an operator. Settings are per tenant."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from app.catalog import listings
from app.customers.models import Customer
from app.db import TenantRef, tenant_session
from app.errors import UserError
from app.orders import audit, service
from app.orders.models import Order
from tests.factories import make_channel, make_sellable, tenant_ref
from tests.ingest_support import holds_of, ingest_one, line_of, order_row, reserved, web_order


async def set_rule(ref: TenantRef, code: str, **kw) -> audit.RuleSetting:
    async with tenant_session(ref) as session:
        return await audit.set_rule(session, code, **kw)


async def release(ref: TenantRef, order_id: int, codes: list[str] | None = None) -> Order:
    async with tenant_session(ref) as session:
        return await service.release_holds(session, order_id, actor="operator@example.com", codes=codes)


async def setup(tenant_slug: str, stock: int = 50):
    ref = await tenant_ref(tenant_slug)
    channel = await make_channel(ref, "web")
    sellable = await make_sellable(ref, channel.id, stock=stock)
    return ref, channel, sellable


def codes(holds) -> list[str]:
    return sorted(h.code for h in holds)


# --- settings ------------------------------------------------------------------------------------------


async def test_rules_list_defaults_and_settings_are_validated(tenant_a, tenant_b):
    ref = await tenant_ref(tenant_a.slug)
    async with tenant_session(ref) as session:
        settings = {s.code: s for s in await audit.rules(session)}
    assert set(settings) == {
        "blacklist",
        "address_incomplete",
        "amount_anomaly",
        "promo_abuse",
        "scalper",
        "duplicate",
        "threshold",
    }
    assert settings["amount_anomaly"].params == {"max_total": "50000.00"}
    assert settings["promo_abuse"].params == {"max_uses": 1, "days": 30}
    assert settings["scalper"].params == {"max_orders": 5, "hours": 24}
    assert all(s.enabled for s in settings.values())

    bad = [
        ({"code": "nope"}, "UNKNOWN_RULE"),
        ({"code": "scalper", "weight": -1}, "INVALID_WEIGHT"),
        ({"code": "scalper", "weight": True}, "INVALID_WEIGHT"),
        ({"code": "scalper", "params": {"max_orders": 0}}, "INVALID_PARAMS"),
        ({"code": "scalper", "params": {"max_orderz": 3}}, "INVALID_PARAMS"),
        ({"code": "amount_anomaly", "params": {"max_total": "lots"}}, "INVALID_PARAMS"),
        ({"code": "address_incomplete", "params": {"patterns": "PO box"}}, "INVALID_PARAMS"),
        ({"code": "scalper", "params": ["max_orders"]}, "INVALID_PARAMS"),
    ]
    for kw, code in bad:
        with pytest.raises(UserError) as err:
            await set_rule(ref, kw.pop("code"), **kw)
        assert err.value.code == code, kw

    changed = await set_rule(ref, "scalper", weight=40, params={"max_orders": 3})
    assert (changed.weight, changed.params) == (40, {"max_orders": 3, "hours": 24})
    changed = await set_rule(ref, "scalper", params={"hours": 2})  # merged over the stored params
    assert changed.params == {"max_orders": 3, "hours": 2} and changed.weight == 40
    money = await set_rule(ref, "amount_anomaly", params={"max_total": 1000})
    assert money.params == {"max_total": "1000.00"}
    async with tenant_session(ref) as session:
        stored = {s.code: s for s in await audit.rules(session)}
    assert stored["scalper"].params == {"max_orders": 3, "hours": 2}

    other = await tenant_ref(tenant_b.slug)  # another tenant keeps the defaults
    async with tenant_session(other) as session:
        theirs = {s.code: s for s in await audit.rules(session)}
    assert theirs["scalper"].params == {"max_orders": 5, "hours": 24} and theirs["scalper"].weight == 100


AUDIT_RULES = "{ auditRules { code enabled weight params } }"
SET_RULE = """
mutation($input: SetAuditRuleInput!) {
  setAuditRule(input: $input) { rule { code enabled weight params } userErrors { code field message } }
}"""


async def test_rules_through_graphql_are_per_tenant(gql, tenant_a, tenant_b):
    data = await gql(SET_RULE, {"input": {"code": "duplicate", "enabled": False}}, token=tenant_a.token)
    assert data["setAuditRule"]["userErrors"] == []
    assert data["setAuditRule"]["rule"]["enabled"] is False
    bad = await gql(SET_RULE, {"input": {"code": "nope"}}, token=tenant_a.token)
    assert bad["setAuditRule"]["userErrors"][0]["code"] == "UNKNOWN_RULE"
    mine = {r["code"]: r for r in (await gql(AUDIT_RULES, token=tenant_a.token))["auditRules"]}
    theirs = {r["code"]: r for r in (await gql(AUDIT_RULES, token=tenant_b.token))["auditRules"]}
    assert mine["duplicate"]["enabled"] is False and theirs["duplicate"]["enabled"] is True


# --- each rule fires, and clears -----------------------------------------------------------------------


async def test_blacklisted_phone_holds_until_an_operator_releases(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    async with tenant_session(ref) as session:
        entry = await audit.add_blacklist(session, ref.id, "phone", "135 0123 4567", "chargebacks")
    assert entry.value_hash and "135" not in entry.value_hash
    result = await ingest_one(ref, channel, web_order("BL-1", [line_of(s)], phone="+86 135-0123-4567"))
    assert result.status == "on_hold"
    [hold] = await holds_of(ref, result.order_id)
    assert hold.code == "blacklist" and "chargebacks" in hold.reason
    assert await reserved(ref, s.material_id) == 0
    order = await release(ref, result.order_id)
    assert order.status == "reserved" and await reserved(ref, s.material_id) == 1


async def test_blacklist_by_buyer_address_and_customer_flag(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    async with tenant_session(ref) as session:
        await audit.add_blacklist(session, ref.id, "buyer", "web:u-bad", "fraud")
        await audit.add_blacklist(session, ref.id, "address", "四川省成都市武侯区 黑名单路 1 号", "")
        for kind, value in [("phone", "abc"), ("email", "nope"), ("buyer", "no-platform"), ("iban", "x")]:
            with pytest.raises(UserError):
                await audit.add_blacklist(session, ref.id, kind, value, "")
    by_buyer = await ingest_one(
        ref, channel, web_order("BL-2", [line_of(s)], buyer_id="u-bad", phone="13600000001")
    )
    by_address = await ingest_one(
        ref, channel, web_order("BL-3", [line_of(s)], phone="13600000002", street="黑名单路1号")
    )
    assert by_buyer.status == by_address.status == "on_hold"
    assert codes(await holds_of(ref, by_address.order_id)) == ["blacklist"]

    clean = await ingest_one(ref, channel, web_order("BL-4", [line_of(s)], phone="13600000003"))
    assert clean.status == "reserved"
    async with tenant_session(ref) as session:
        customer = await session.get(Customer, (await order_row(ref, clean.order_id)).customer_id)
        customer.blacklisted = True
    flagged = await ingest_one(ref, channel, web_order("BL-5", [line_of(s)], phone="13600000003"))
    assert flagged.status == "on_hold"
    assert "customer is blacklisted" in (await holds_of(ref, flagged.order_id))[0].reason


async def test_incomplete_address_holds_and_a_disabled_rule_does_not(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    no_street = {"name": "A", "phone": "13700000001", "country": "CN", "province": "四川省", "city": "成都市"}
    held = await ingest_one(ref, channel, web_order("AD-1", [line_of(s)], address=no_street))
    assert held.status == "on_hold"
    [hold] = await holds_of(ref, held.order_id)
    assert hold.code == "address_incomplete" and "street" in hold.reason
    short = await ingest_one(ref, channel, web_order("AD-2", [line_of(s)], street="1号"))
    assert codes(await holds_of(ref, short.order_id)) == ["address_incomplete"]

    await set_rule(ref, "address_incomplete", params={"patterns": ["自提点", "PO Box"]})
    pickup = await ingest_one(ref, channel, web_order("AD-3", [line_of(s)], street="菜鸟驿站 自提点 18 号柜"))
    po_box = await ingest_one(ref, channel, web_order("AD-4", [line_of(s)], street="P.O. box 1234, Main St"))
    assert pickup.status == po_box.status == "on_hold"
    assert "自提点" in (await holds_of(ref, pickup.order_id))[0].reason

    card = await make_sellable(ref, channel.id, stock=0, kind="virtual")
    virtual = await ingest_one(ref, channel, web_order("AD-5", [line_of(card)], address=no_street))
    assert virtual.status == "reserved"  # nothing to deliver, no address needed

    await set_rule(ref, "address_incomplete", enabled=False)
    other = {**no_street, "phone": "13700000009"}  # another buyer: not a duplicate of AD-1
    passes = await ingest_one(
        ref, channel, web_order("AD-6", [line_of(s)], phone="13700000009", address=other)
    )
    assert passes.status == "reserved"


async def test_amount_anomalies(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    await set_rule(ref, "amount_anomaly", params={"max_total": "150.00"})
    big = await ingest_one(ref, channel, web_order("AM-1", [line_of(s, 2)]))  # 200.00
    assert big.status == "on_hold"
    assert "above 150.00" in (await holds_of(ref, big.order_id))[0].reason
    norm = web_order("AM-2", [line_of(s)])
    short = dataclasses.replace(norm, amounts=dataclasses.replace(norm.amounts, paid=Decimal("50.00")))
    paid_short = await ingest_one(ref, channel, short)
    assert "less than the total" in (await holds_of(ref, paid_short.order_id))[0].reason
    free = await ingest_one(ref, channel, web_order("AM-3", [line_of(s, unit_price="0")]))
    assert "not positive" in (await holds_of(ref, free.order_id))[0].reason
    gifts_only = await ingest_one(ref, channel, web_order("AM-4", [line_of(s, unit_price="0", is_gift=True)]))
    assert gifts_only.status == "reserved"

    await set_rule(ref, "amount_anomaly", enabled=False)
    assert (await ingest_one(ref, channel, web_order("AM-5", [line_of(s, 2)]))).status == "reserved"


async def test_promo_code_reused_across_channels_is_held(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    shop = await make_channel(ref, "web")
    async with tenant_session(ref) as session:
        await listings.create_listing(
            session, channel_id=shop.id, product_id=s.product_id, external_item_id="SHOP-ITEM"
        )

    def with_promo(norm, code: str, key: str = "promo_code"):
        return dataclasses.replace(norm, extra=((key, code),))

    first = await ingest_one(
        ref, channel, with_promo(web_order("PR-1", [line_of(s)], phone="13800000009"), "NEW10")
    )
    again = await ingest_one(
        ref,
        shop,
        with_promo(web_order("PR-2", [{"item_id": "SHOP-ITEM"}], phone="13800000009"), "NEW10", "coupon"),
    )
    other_code = await ingest_one(
        ref, channel, with_promo(web_order("PR-3", [line_of(s)], phone="13800000009"), "SUMMER")
    )
    someone_else = await ingest_one(
        ref, channel, with_promo(web_order("PR-4", [line_of(s)], phone="13800000010"), "NEW10")
    )
    assert first.status == "reserved" and again.status == "on_hold"
    assert other_code.status == someone_else.status == "reserved"
    [hold] = await holds_of(ref, again.order_id)
    assert hold.code == "promo_abuse" and "NEW10" in hold.reason
    await set_rule(ref, "promo_abuse", params={"max_uses": 5})
    assert (await release(ref, again.order_id)).status == "reserved"


async def test_scalper_many_orders_to_one_address(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    await set_rule(ref, "scalper", params={"max_orders": 2})
    spellings = [
        "科华北路 65 号 3 栋",
        "科华北路65号3栋",
        "科华北路６５号 ３栋",
    ]  # one address, three spellings
    results = [
        await ingest_one(
            ref, channel, web_order(f"SC-{i}", [line_of(s)], phone=f"1390000010{i}", street=street)
        )
        for i, street in enumerate(spellings)
    ]
    assert [r.status for r in results] == ["reserved", "reserved", "on_hold"]
    [hold] = await holds_of(ref, results[2].order_id)
    assert hold.code == "scalper" and "3 orders" in hold.reason
    await set_rule(ref, "scalper", enabled=False)
    assert (await ingest_one(ref, channel, web_order("SC-9", [line_of(s)], street=spellings[0]))).status == (
        "reserved"
    )


async def test_duplicate_on_another_channel_is_held(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    shop = await make_channel(ref, "web")
    async with tenant_session(ref) as session:
        await listings.create_listing(
            session, channel_id=shop.id, product_id=s.product_id, external_item_id="DUP"
        )
    street = "人民南路 4 段 1 号"
    first = await ingest_one(
        ref, channel, web_order("D-1", [line_of(s, 2)], phone="13500000001", street=street)
    )
    twin = await ingest_one(
        ref, shop, web_order("D-2", [{"item_id": "DUP", "quantity": 2}], phone="13500000001", street=street)
    )
    more = await ingest_one(
        ref, channel, web_order("D-3", [line_of(s, 3)], phone="13500000001", street=street)
    )
    assert (first.status, twin.status, more.status) == ("reserved", "on_hold", "reserved")
    [hold] = await holds_of(ref, twin.order_id)
    assert hold.code == "duplicate" and first.number in hold.reason
    async with tenant_session(ref) as session:
        await service.cancel(session, twin.order_id, reason="duplicate", actor="operator")
    assert await reserved(ref, s.material_id) == 5  # 2 + 3: the duplicate never took stock
    await set_rule(ref, "duplicate", enabled=False)
    repeat = await ingest_one(
        ref, channel, web_order("D-4", [line_of(s, 2)], phone="13500000001", street=street)
    )
    assert repeat.status == "reserved"


async def test_weights_and_threshold(tenant_a):
    ref, channel, s = await setup(tenant_a.slug)
    no_street = {"name": "A", "phone": "13700000002", "country": "CN", "city": "成都市"}
    await set_rule(ref, "address_incomplete", weight=0)  # flag only
    assert (
        await ingest_one(ref, channel, web_order("W-1", [line_of(s)], address=no_street))
    ).status == "reserved"
    await set_rule(ref, "address_incomplete", weight=40)
    await set_rule(ref, "amount_anomaly", weight=40, params={"max_total": "50.00"})
    await set_rule(ref, "threshold", params={"min_weight": 60})
    one = await ingest_one(ref, channel, web_order("W-2", [line_of(s)]))  # amount only: 40 < 60
    two = await ingest_one(ref, channel, web_order("W-3", [line_of(s, 2)], address=no_street))  # 80 >= 60
    assert (one.status, two.status) == ("reserved", "on_hold")
    assert codes(await holds_of(ref, two.order_id)) == ["address_incomplete", "amount_anomaly"]
    # Releasing one code leaves the order on hold; releasing the last one sends it on to stock.
    assert (await release(ref, two.order_id, ["amount_anomaly"])).status == "on_hold"
    assert (await release(ref, two.order_id, ["address_incomplete"])).status == "reserved"
