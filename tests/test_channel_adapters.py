"""Channel adapters: real-shaped platform payloads (tests/fixtures/channels/<platform>/) in, the unified order
model out. Pure translation: no database, no network."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.channels.adapters import ChannelAdapter, ListingRef, UnknownPlatformError, adapters, get_adapter
from app.channels.adapters import _values as v
from app.channels.adapters.csvfile import CsvAdapter, parse_csv
from app.channels.models import PLATFORMS
from app.channels.normalized import (
    AdapterError,
    Address,
    Amounts,
    Buyer,
    NormalizedLine,
    NormalizedOrder,
)

FIXTURES = Path(__file__).parent / "fixtures" / "channels"
D = Decimal


def raw(platform: str, name: str) -> bytes:
    return (FIXTURES / platform / name).read_bytes()


def doc(platform: str, name: str):
    return json.loads(raw(platform, name))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def order(platform: str, name: str = "order.json") -> NormalizedOrder:
    return get_adapter(platform).parse_order(raw(platform, name))


def bad(fn, payload, path: str, *words: str) -> AdapterError:
    with pytest.raises(AdapterError) as info:
        fn(payload)
    assert info.value.path == path, str(info.value)
    for word in words:
        assert word in info.value.message, str(info.value)
    return info.value


# -- normalisation primitives ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+86 138-1234-5678", "13812345678"),
        ("0086 139 1234 5678", "13912345678"),
        ("8613912345678", "13912345678"),
        ("139-1111-2222", "13911112222"),
        ("021-5888 1234", "02158881234"),
        ("+1 (212) 555-0199", "+12125550199"),
        ("138****5678", "138****5678"),  # masked by the platform: kept as is
        ("$$KlqdO3S6/9vQ*CgYIASAH$1$$", "$$KlqdO3S6/9vQ*CgYIASAH$1$$"),  # Douyin cipher text
        ("  ", None),
        (None, None),
    ],
)
def test_phone_normalisation(given, expected):
    assert v.phone(given) == expected


def test_email_and_money_normalisation():
    assert v.email("  Jane.Cooper@Example.COM ") == "jane.cooper@example.com"
    assert v.email("") is None
    assert v.money("19.9", "x") == D("19.90")
    assert v.money(19.9, "x") == D("19.90")  # floats via their shortest text, not binary noise
    assert v.money(D("0.005"), "x") == D("0.01")  # half-up
    assert v.money(20, "x").as_tuple().exponent == -2
    assert v.cents(1990, "x") == D("19.90")
    assert v.cents("0", "x") == D("0.00")
    for wrong in ("abc", None, True, "NaN", "Infinity"):
        with pytest.raises(AdapterError, match=r"x: .* is not an amount"):
            v.money(wrong, "x")
    with pytest.raises(AdapterError, match="more than two decimal places"):
        v.exact_money("1.999", "x")


def test_shanghai_wall_clock_times_become_utc():
    assert v.local_time("2024-06-18 09:15:27", "t") == utc(2024, 6, 18, 1, 15, 27)
    assert v.local_time("2024-06-19 00:00:45", "t") == utc(2024, 6, 18, 16, 0, 45)  # previous day in UTC
    assert v.iso_time("2024-06-18T10:15:02-04:00", "t") == utc(2024, 6, 18, 14, 15, 2)
    assert v.iso_time("2024-06-18T15:01:58.000Z", "t") == utc(2024, 6, 18, 15, 1, 58)
    assert v.unix_time(1718712930, "t") == utc(2024, 6, 18, 12, 15, 30)
    with pytest.raises(AdapterError, match="t: '2024-06-18T10:15:02' has no UTC offset"):
        v.iso_time("2024-06-18T10:15:02", "t")
    with pytest.raises(AdapterError, match="looks like milliseconds"):
        v.unix_time(1718712930000, "t")
    with pytest.raises(AdapterError, match="is not a 'yyyy-MM-dd HH:mm:ss' time"):
        v.local_time("2024/06/18", "t")


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        ("50.00", ["716.00", "129.00", "0.00"], ["42.37", "7.63", "0.00"]),
        ("40.00", ["499.00", "98.00"], ["33.43", "6.57"]),
        ("0.10", ["1.00", "1.00", "1.00"], ["0.04", "0.03", "0.03"]),  # ties: earliest line first
        ("0.03", ["0.00", "0.00", "0.00"], ["0.01", "0.01", "0.01"]),  # all zero: even split
        ("0.00", ["5.00", "7.00"], ["0.00", "0.00"]),
    ],
)
def test_allocation_examples(total, weights, expected):
    assert v.allocate(D(total), [D(w) for w in weights]) == [D(e) for e in expected]


@given(
    st.integers(min_value=0, max_value=10**7),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12),
)
def test_allocation_sums_exactly_and_stays_proportional(total_cents, weight_cents):
    total = D(total_cents) / 100
    weights = [D(w) / 100 for w in weight_cents]
    parts = v.allocate(total, weights)
    assert sum(parts) == total
    assert all(p.as_tuple().exponent == -2 for p in parts)
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        ideal = total * weight / weight_sum if weight_sum else total / len(weights)
        assert abs(part - ideal) < D("0.01")  # within one cent of the exact share
        if weight_sum and total <= weight_sum:
            assert part <= weight  # never discounts a line below zero
    assert v.allocate(total, weights) == parts  # deterministic


def test_the_model_refuses_half_normalised_values():
    line = NormalizedLine("1", "i", "s", "t", 1, D("1.00"), D("0.00"), D("1.00"))
    with pytest.raises(AdapterError, match=r"lines\[1\].unit_price"):
        replace(line, unit_price=1.0)
    with pytest.raises(AdapterError, match=r"lines\[1\].quantity"):
        replace(line, quantity=0)
    amounts = Amounts(D("1.00"), D("0.00"), D("0.00"), D("0.00"), D("1.00"), D("1.00"))
    base = dict(
        external_id="X1",
        channel_platform="web",
        status="paid",
        placed_at=utc(2024, 1, 1),
        paid_at=None,
        updated_at=utc(2024, 1, 1),
        currency="CNY",
        business_model="b2c",
        buyer=Buyer(),
        address=Address(),
        lines=(line,),
        amounts=amounts,
    )
    assert NormalizedOrder(**base).status == "paid"
    with pytest.raises(AdapterError, match=r"placed_at: .* is not an aware UTC datetime"):
        NormalizedOrder(**{**base, "placed_at": datetime(2024, 1, 1)})
    with pytest.raises(AdapterError, match="status: 'open' is not one of"):
        NormalizedOrder(**{**base, "status": "open"})
    with pytest.raises(AdapterError, match=r"amounts\.discount"):
        NormalizedOrder(**{**base, "amounts": replace(amounts, discount=D("0.50"))})
    with pytest.raises(AdapterError, match="duplicate line ids"):
        NormalizedOrder(**{**base, "lines": (line, line)})
    with pytest.raises(AdapterError, match="fulfilled_by_platform: 'AFN' is not true/false"):
        NormalizedOrder(**{**base, "fulfilled_by_platform": "AFN"})


# -- contract every adapter keeps ------------------------------------------------------------------------

JSON_PLATFORMS = sorted(p.parent.name for p in FIXTURES.glob("*/order.json"))
ORDER_FIXTURES = sorted(
    (p.parent.name, p.name) for p in FIXTURES.glob("*/order*.json") if p.parent.name in adapters()
)


@pytest.mark.parametrize(("platform", "name"), ORDER_FIXTURES)
def test_amounts_add_up_and_input_forms_agree(platform, name):
    adapter = get_adapter(platform)
    result = adapter.parse_order(raw(platform, name))
    a = result.amounts
    assert sum(line.total for line in result.lines) == a.subtotal - a.discount
    assert sum(line.discount for line in result.lines) == a.discount
    assert a.total == a.subtotal - a.discount + a.shipping + a.tax
    for line in result.lines:
        assert line.total == line.unit_price * line.quantity - line.discount
    assert result.channel_platform == platform
    # bytes, text and an already-decoded dict give the same result; parsing is repeatable
    assert adapter.parse_order(raw(platform, name).decode()) == result
    assert adapter.parse_order(doc(platform, name)) == result
    assert adapter.parse_order(raw(platform, name)) == result


@pytest.mark.parametrize("platform", JSON_PLATFORMS)
def test_every_platform_has_fixtures_and_newer_versions_supersede(platform):
    first, updated = order(platform), order(platform, "order_updated.json")
    assert updated.supersedes(first) and not first.supersedes(updated)
    assert updated.status != first.status
    with pytest.raises(AdapterError) as info:
        order(platform, "malformed.json")
    assert info.value.path and info.value.message


def test_registry():
    for platform in ("shopify", "amazon", "taobao", "tmall", "jd", "douyin", "generic", "csv"):
        adapter = get_adapter(platform)
        assert isinstance(adapter, ChannelAdapter) and adapter.platform == platform
        assert adapter.inventory_api
    assert get_adapter("taobao") is not get_adapter("tmall")
    assert get_adapter("b2b").default_business_model == "b2b"
    assert {"web", "mini_program", "pos", "manual"} <= set(adapters())
    with pytest.raises(UnknownPlatformError, match=r"'pinduoduo' \(known: amazon, b2b, csv"):
        get_adapter("pinduoduo")
    assert set(PLATFORMS) - set(adapters()) <= {"pinduoduo", "shopee"}  # still without an adapter


@pytest.mark.parametrize("platform", ["amazon", "taobao", "jd", "douyin", "generic"])
def test_platforms_without_their_own_signature_use_the_channel_hmac(platform):
    adapter = get_adapter(platform)
    assert adapter.signature_header is None
    with pytest.raises(NotImplementedError):
        adapter.verify_signature({}, b"{}", "secret")


def test_unparseable_payloads_say_where():
    parse = get_adapter("shopify").parse_order
    bad(parse, b"{not json", "$", "not valid JSON", "line 1 column 2")
    bad(parse, b"\xff\xfe", "$", "not UTF-8")
    bad(parse, b"[]", "$", "expected an object, got a list")
    no_id = doc("shopify", "order.json")
    del no_id["id"]
    bad(parse, no_id, "id", "is required")
    bad(
        parse,
        {**doc("shopify", "order.json"), "line_items": {}},
        "line_items",
        "expected a list, got an object",
    )


# -- Shopify -----------------------------------------------------------------------------------------------


def test_shopify_order():
    o = order("shopify")
    assert (o.external_id, o.channel_platform, o.status, o.raw_status) == (
        "5702301335786",
        "shopify",
        "paid",
        "paid/unfulfilled",
    )
    assert o.placed_at == utc(2024, 6, 18, 14, 15, 2)
    assert o.paid_at == utc(2024, 6, 18, 14, 15, 1)
    assert o.updated_at == utc(2024, 6, 18, 14, 15, 5)
    assert (o.currency, o.business_model) == ("USD", "b2c")
    assert o.buyer == Buyer("7311204843626", "Jane Cooper", "+12125550199", "jane.cooper@example.com", None)
    assert o.address == Address(
        "Jane Cooper",
        "+12125550199",
        "US",
        "New York",
        "New York",
        None,
        "350 Fifth Avenue Suite 4100",
        "10118",
    )
    sweater, beanie = o.lines
    assert sweater == NormalizedLine(
        "13790001234602", "8100004202730", "44100019384362", "Merino Crew Sweater - Navy / M", 2, D("89.00"),
        D("17.80"), D("160.20"), False,
    )  # fmt: skip
    assert (beanie.external_sku_id, beanie.quantity, beanie.discount, beanie.total) == (
        "44100019384363",
        1,
        D("2.90"),
        D("26.10"),
    )
    assert o.amounts == Amounts(D("207.00"), D("8.00"), D("20.70"), D("15.37"), D("209.67"), D("209.67"))
    assert (o.requested_carrier, o.buyer_note, o.invoice) == (
        "Standard Shipping",
        "Please leave at the front desk",
        None,
    )
    assert dict(o.extra)["name"] == "#1042"


def test_shopify_updates_cancel_and_refund():
    shipped = order("shopify", "order_updated.json")
    assert (shipped.status, shipped.raw_status) == ("shipped", "paid/fulfilled")
    cancelled = order("shopify", "cancel.json")
    assert cancelled.status == "refunded"
    adapter = get_adapter("shopify")
    c = adapter.parse_cancel(raw("shopify", "cancel.json"))
    assert (c.external_id, c.reason, c.cancelled_at) == (
        "5702301335786",
        "customer",
        utc(2024, 6, 18, 16, 2, 41),
    )
    bad(adapter.parse_cancel, raw("shopify", "order.json"), "cancelled_at", "not cancelled")
    r = adapter.parse_refund(raw("shopify", "refund.json"))
    assert (r.external_id, r.external_refund_id, r.line_ids) == (
        "5702301335786",
        "929361462",
        ("13790001234602",),
    )
    assert (r.amount, r.reason, r.refunded_at) == (D("87.21"), "Wrong size", utc(2024, 6, 25, 13, 0, 3))
    pending = {**doc("shopify", "order.json"), "financial_status": "pending", "total_outstanding": "209.67"}
    p = adapter.parse_order(pending)
    assert (p.status, p.paid_at, p.amounts.paid) == ("pending_payment", None, D("0.00"))
    bad(
        adapter.parse_order,
        raw("shopify", "malformed.json"),
        "line_items[1].quantity",
        "'two' is not a whole number",
    )


def test_shopify_signature():
    adapter, body, secret = get_adapter("shopify"), raw("shopify", "order.json"), "shpss_5f1c0d2e9a8b"
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    assert adapter.signature_header == "X-Shopify-Hmac-Sha256"
    assert adapter.verify_signature({"X-Shopify-Hmac-Sha256": signature}, body, secret)
    assert adapter.verify_signature({"x-shopify-hmac-sha256": signature}, body, secret)  # header case
    assert not adapter.verify_signature(
        {"X-Shopify-Hmac-Sha256": signature}, body.replace(b"89.00", b"8.90"), secret
    )
    assert not adapter.verify_signature({"X-Shopify-Hmac-Sha256": signature}, body, "another-secret")
    assert not adapter.verify_signature({}, body, secret)
    assert not adapter.verify_signature({"X-Shopify-Hmac-Sha256": "not base64 ✓"}, body, secret)
    assert not adapter.verify_signature({"X-Shopify-Hmac-Sha256": signature}, body, "")


def test_shopify_inventory_update():
    adapter = get_adapter("shopify")
    listing = ListingRef(
        "8100004202730", "44100019384362", external_inventory_id="45678912", external_location_id="655441"
    )
    assert adapter.render_inventory_update(listing, 7) == {
        "location_id": 655441,
        "inventory_item_id": 45678912,
        "available": 7,
    }
    with pytest.raises(
        AdapterError, match=r"listing\.external_inventory_id: Shopify sets stock per inventory item"
    ):
        adapter.render_inventory_update(ListingRef("8100004202730", "44100019384362"), 7)
    with pytest.raises(ValueError, match="whole number >= 0"):
        adapter.render_inventory_update(listing, -1)


# -- Amazon ------------------------------------------------------------------------------------------------


def test_amazon_order():
    o = order("amazon")
    assert (o.external_id, o.status, o.raw_status, o.currency) == (
        "114-3941689-8772232",
        "paid",
        "Unshipped",
        "USD",
    )
    assert (o.placed_at, o.paid_at, o.updated_at) == (
        utc(2024, 6, 18, 14, 5, 10),
        utc(2024, 6, 18, 14, 5, 10),
        utc(2024, 6, 18, 14, 35, 44),
    )
    assert o.promised_ship_by == utc(2024, 6, 21, 6, 59, 59)
    assert o.buyer == Buyer(None, "Marcus Lee", None, "7kq2xz9m4r8tlpc@marketplace.amazon.com", None)
    assert o.address == Address(
        "Marcus Lee", "+12015550143", "US", "NJ", "Weehawken", None, "1200 Harbor Blvd Apt 5B", "07086-6712"
    )
    tea, cups = o.lines
    assert (tea.external_line_id, tea.external_item_id, tea.external_sku_id) == (
        "12486523178234",
        "B0C1XK8Z2Q",
        "TEA-OOLONG-250",
    )
    assert (tea.quantity, tea.unit_price, tea.discount, tea.total, tea.is_gift) == (
        2,
        D("19.99"),
        D("4.00"),
        D("35.98"),
        False,
    )
    assert (cups.quantity, cups.unit_price, cups.discount, cups.total) == (
        1,
        D("16.49"),
        D("1.00"),
        D("15.49"),
    )
    assert o.amounts == Amounts(D("56.47"), D("5.99"), D("5.00"), D("3.73"), D("61.19"), D("61.19"))
    assert (o.business_model, o.requested_carrier) == ("b2c", "Std US D2D Dom")
    assert dict(o.extra) == {"fulfillment_channel": "MFN", "marketplace_id": "ATVPDKIKX0DER"}
    assert o.fulfilled_by_platform is False  # the seller ships it


def test_amazon_fulfilled_orders_say_so():
    """SP-API ``Order.FulfillmentChannel``: AFN = fulfilled by Amazon, MFN = by the seller."""
    adapter = get_adapter("amazon")
    afn = doc("amazon", "order.json")
    afn["order"]["payload"]["FulfillmentChannel"] = "AFN"
    assert adapter.parse_order(afn).fulfilled_by_platform is True
    absent = doc("amazon", "order.json")
    del absent["order"]["payload"]["FulfillmentChannel"]
    assert adapter.parse_order(absent).fulfilled_by_platform is False
    other = doc("amazon", "order.json")
    other["order"]["payload"]["FulfillmentChannel"] = "Amazon"
    bad(adapter.parse_order, other, "order.payload.FulfillmentChannel", "'Amazon' is not AFN or MFN")


def test_amazon_variants():
    adapter = get_adapter("amazon")
    assert order("amazon", "order_updated.json").status == "shipped"  # getOrders shape, paged items
    pending = doc("amazon", "order.json")
    pending["order"]["payload"].update(OrderStatus="Pending", IsBusinessOrder=True)
    del pending["order"]["payload"]["OrderTotal"]
    for item in pending["items"]["payload"]["OrderItems"]:  # documented: no prices while Pending
        for key in [k for k in item if k.endswith(("Price", "Tax", "Discount"))]:
            del item[key]
    p = adapter.parse_order(pending)
    assert (p.status, p.paid_at, p.business_model) == ("pending_payment", None, "b2b")
    assert p.amounts == Amounts(*[D("0.00")] * 6)
    assert not any(line.is_gift for line in p.lines)
    foreign = doc("amazon", "order.json")
    foreign["items"]["payload"]["AmazonOrderId"] = "111-0000000-0000000"
    bad(adapter.parse_order, foreign, "items.payload.AmazonOrderId", "the order is 114-3941689-8772232")
    unknown = doc("amazon", "order.json")
    unknown["order"]["payload"]["OrderStatus"] = "Lost"
    bad(adapter.parse_order, unknown, "order.payload.OrderStatus", "unknown status 'Lost'", "Unshipped")
    bad(adapter.parse_order, raw("amazon", "malformed.json"), "order.payload.PurchaseDate", "not an ISO 8601")


def test_amazon_cancel_refund_inventory():
    adapter = get_adapter("amazon")
    c = adapter.parse_cancel(raw("amazon", "cancel.json"))
    assert (c.external_id, c.reason, c.cancelled_at) == (
        "114-3941689-8772232",
        "Order Canceled by buyer",
        utc(2024, 6, 18, 15, 1, 58),
    )
    request = doc("amazon", "cancel.json")
    request["Payload"]["OrderChangeNotification"].update(OrderChangeType="BuyerRequestedChange")
    request["Payload"]["OrderChangeNotification"]["Summary"]["OrderStatus"] = "Unshipped"
    bad(adapter.parse_cancel, request, "Payload.OrderChangeNotification.Summary.OrderStatus", "only asks")
    r = adapter.parse_refund(raw("amazon", "refund.json"))
    assert (r.external_id, r.line_ids, r.refunded_at) == (
        "114-3941689-8772232",
        ("12486523178234",),
        utc(2024, 6, 25, 18, 4, 37),
    )
    assert r.amount == D("19.31")  # 19.99 principal + 1.32 tax - 2.00 promotion clawed back
    assert r.external_refund_id == "114-3941689-8772232@2024-06-25T18:04:37Z"
    body = adapter.render_inventory_update(ListingRef("B0C1XK8Z2Q", "TEA-OOLONG-250"), 12)
    assert body == {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 12}],
            }
        ],
    }
    with pytest.raises(AdapterError, match=r"listing\.external_sku_id"):
        adapter.render_inventory_update(ListingRef("B0C1XK8Z2Q", ""), 1)


# -- Taobao / Tmall ----------------------------------------------------------------------------------------


def test_taobao_order():
    o = order("taobao")
    assert (o.external_id, o.channel_platform, o.status, o.raw_status) == (
        "2045678912345678901",
        "taobao",
        "paid",
        "WAIT_SELLER_SEND_GOODS",
    )
    # "2024-06-18 09:15:27" Asia/Shanghai
    assert (o.placed_at, o.paid_at, o.updated_at) == (
        utc(2024, 6, 18, 1, 15, 27),
        utc(2024, 6, 18, 1, 16, 2),
        utc(2024, 6, 18, 1, 16, 5),
    )
    assert (o.currency, o.business_model) == ("CNY", "b2c")
    assert o.buyer == Buyer("AAHyV9xUAEXkMvN3c7Ldq1Pp", None, "13812345678", None, "t**8")
    assert o.address == Address(
        "王小明",
        "13812345678",
        "CN",
        "浙江省",
        "杭州市",
        "西湖区",
        "文新街道 文二西路 88 号 西溪银座 3 幢 1201 室",
        "310012",
    )
    tea, bowl, sample = o.lines
    # line discount 20.00 + a share of the 50.00 shop coupon, allocated on 716 : 129 : 0
    assert (tea.external_line_id, tea.external_item_id, tea.external_sku_id) == (
        "2045678912345678902",
        "712345678901",
        "4987654321012",
    )
    assert (tea.title, tea.quantity, tea.unit_price) == (
        "龙井绿茶 明前特级 250g 规格:250g;包装:礼盒",
        2,
        D("368.00"),
    )
    assert (tea.discount, tea.total) == (D("62.37"), D("673.63"))
    assert (bowl.external_sku_id, bowl.discount, bowl.total, bowl.is_gift) == (
        "",
        D("7.63"),
        D("121.37"),
        False,
    )
    assert (sample.unit_price, sample.total, sample.is_gift) == (D("0.00"), D("0.00"), True)
    assert (tea.discount - D("20.00")) + bowl.discount + sample.discount == D("50.00")  # the coupon, exactly
    assert o.amounts == Amounts(D("865.00"), D("10.00"), D("70.00"), D("0.00"), D("805.00"), D("805.00"))
    assert (o.buyer_note, o.seller_note) == ("请用顺丰，谢谢", "VIP 客户，加送试用装")  # noqa: RUF001
    assert (o.invoice.title, o.invoice.tax_id, o.invoice.type) == ("杭州云栖科技有限公司", None, "电子发票")


def test_taobao_updates_cancel_refund_and_errors():
    adapter = get_adapter("taobao")
    assert order("taobao", "order_updated.json").status == "shipped"
    closed = order("taobao", "cancel.json")
    assert (closed.status, closed.paid_at, closed.amounts.paid) == ("cancelled", None, D("0.00"))
    c = adapter.parse_cancel(raw("taobao", "cancel.json"))
    assert (c.external_id, c.reason, c.cancelled_at) == (
        "2045678999900001111",
        "closed before payment",
        utc(2024, 6, 19, 13, 3, 45),
    )
    bad(
        adapter.parse_cancel,
        raw("taobao", "order.json"),
        "trade_fullinfo_get_response.trade.status",
        "not closed",
    )
    r = adapter.parse_refund(raw("taobao", "refund.json"))
    assert (r.external_id, r.external_refund_id, r.line_ids) == (
        "2045678912345678901",
        "158765432101234567",
        ("2045678912345678903",),
    )
    assert (r.amount, r.reason, r.refunded_at) == (D("121.37"), "七天无理由退换货", utc(2024, 6, 21, 6, 30))
    waiting = doc("taobao", "refund.json")
    waiting["refund_get_response"]["refund"]["status"] = "WAIT_SELLER_AGREE"
    bad(adapter.parse_refund, waiting, "refund_get_response.refund.status", "only a SUCCESS refund")
    bad(
        adapter.parse_order,
        raw("taobao", "malformed.json"),
        "trade_fullinfo_get_response.trade.orders.order[1].num",
        "'两'",
    )
    overpaid = doc("taobao", "order.json")
    overpaid["trade_fullinfo_get_response"]["trade"]["payment"] = "900.00"
    bad(
        adapter.parse_order, overpaid, "trade_fullinfo_get_response.trade.payment", "exceeds the goods 845.00"
    )
    body = adapter.render_inventory_update(ListingRef("712345678901", "4987654321012"), 30)
    assert body == {"num_iid": 712345678901, "sku_id": 4987654321012, "quantity": 30, "type": 1}
    assert adapter.render_inventory_update(ListingRef("712345678902"), 0) == {
        "num_iid": 712345678902,
        "quantity": 0,
        "type": 1,
    }


def test_tmall_uses_taobaos_own_allocation_and_store_delivery():
    o = order("tmall")
    assert (o.channel_platform, o.business_model, o.status) == ("tmall", "o2o", "paid")
    assert o.placed_at == utc(2024, 6, 18, 15, 58, 10) and o.paid_at == utc(2024, 6, 18, 16, 0, 45)
    kettle, pitcher = o.lines
    assert (kettle.discount, kettle.total) == (D("23.92"), D("275.08"))  # part_mjz_discount, as given
    assert (pitcher.discount, pitcher.total) == (D("21.08"), D("128.92"))  # 10.00 own + 11.08 allocated
    assert o.amounts == Amounts(D("449.00"), D("0.00"), D("45.00"), D("0.00"), D("404.00"), D("404.00"))
    assert o.address.city == "深圳市" and o.address.district == "南山区"
    assert order("tmall", "order_updated.json").status == "completed"
    c = get_adapter("tmall").parse_cancel(raw("tmall", "cancel.json"))
    assert (c.external_id, c.reason) == ("3512345678900000001", "closed after a full refund")
    assert order("tmall", "cancel.json").status == "refunded"
    with pytest.raises(AdapterError) as info:
        order("tmall", "malformed.json")
    assert (
        str(info.value) == "error_response: TOP error 27 Invalid session: invalid-sessionkey SessionKey非法"
    )


# -- JD ----------------------------------------------------------------------------------------------------


def test_jd_order():
    o = order("jd")
    assert (o.external_id, o.status, o.raw_status, o.currency) == (
        "287654321098",
        "paid",
        "WAIT_SELLER_STOCK_OUT",
        "CNY",
    )
    assert (o.placed_at, o.paid_at, o.updated_at) == (
        utc(2024, 6, 18, 12, 31, 7),
        utc(2024, 6, 18, 12, 31, 30),
        utc(2024, 6, 18, 12, 33, 15),
    )
    assert o.buyer == Buyer("jd_4f8a2b1c9e7d", None, "13912345678", None, "jd_4f8a2b1c9e7d")
    assert o.address == Address(
        "陈静", "13912345678", "CN", "上海", "浦东新区", "张江镇", "博云路2号浦软大厦1203室", None
    )
    earbuds, case = o.lines
    assert (earbuds.external_line_id, earbuds.external_item_id, earbuds.external_sku_id) == (
        "100012345678",
        "10023456789",
        "100012345678",
    )
    # sellerDiscount 40.00 is order level only: allocated on 499 : 98, remainder cent to the larger fraction
    assert (earbuds.discount, earbuds.total) == (D("33.43"), D("465.57"))
    assert (case.quantity, case.unit_price, case.discount, case.total) == (
        2,
        D("49.00"),
        D("6.57"),
        D("91.43"),
    )
    assert earbuds.discount + case.discount == D("40.00")
    assert o.amounts == Amounts(D("597.00"), D("8.00"), D("40.00"), D("0.00"), D("565.00"), D("565.00"))
    assert (o.buyer_note, o.seller_note) == ("工作日送货，送前电话联系", None)  # noqa: RUF001
    assert (o.invoice.title, o.invoice.tax_id, o.invoice.type) == (
        "上海云栈信息技术有限公司",
        "91310115MA1K4B2X7Q",
        "1",
    )
    assert o.extra == ()


def test_jd_variants_cancel_and_errors():
    adapter = get_adapter("jd")
    assert order("jd", "order_updated.json").status == "shipped"
    c = adapter.parse_cancel(raw("jd", "cancel.json"))
    assert (c.external_id, c.reason, c.cancelled_at) == (
        "287654321098",
        "用户取消订单：不想要了",  # noqa: RUF001
        utc(2024, 6, 18, 13, 12, 40),
    )
    bad(
        adapter.parse_cancel,
        raw("jd", "order.json"),
        "jingdong_pop_order_get_responce.orderDetailInfo.orderInfo.orderState",
    )
    info = doc("jd", "order.json")["jingdong_pop_order_get_responce"]["orderDetailInfo"]["orderInfo"]
    search = {
        "jingdong_pop_order_search_responce": {
            "searchorderinfo_result": {
                "apiResult": {"success": True},
                "orderInfoList": [info],
                "orderTotal": 1,
            }
        }
    }
    assert adapter.parse_order(search) == order("jd")
    failed = {
        "jingdong_pop_order_get_responce": {
            "orderDetailInfo": {"apiResult": {"success": False, "chineseErrCode": "订单不存在"}}
        }
    }
    bad(
        adapter.parse_order,
        failed,
        "jingdong_pop_order_get_responce.orderDetailInfo.apiResult.success",
        "订单不存在",
    )
    bad(
        adapter.parse_order,
        {"error_response": {"code": "19", "zh_desc": "token已过期"}},
        "error_response",
        "JOS error 19: token已过期",
    )
    bad(
        adapter.parse_order,
        raw("jd", "malformed.json"),
        "jingdong_pop_order_get_responce.orderDetailInfo.orderInfo.itemInfoList[0].jdPrice",
        "'四百九十九' is not an amount",
    )
    bad(adapter.parse_refund, b"{}", "$", "not normalised")
    assert adapter.render_inventory_update(ListingRef("10023456789", "100012345678"), 5) == {
        "skuId": 100012345678,
        "stockNum": 5,
    }


# -- Douyin ------------------------------------------------------------------------------------------------


def test_douyin_order():
    o = order("douyin")
    assert (o.external_id, o.status, o.raw_status, o.currency) == (
        "6920145678901234567",
        "paid",
        "2/2",
        "CNY",
    )
    # Unix seconds 1718712930 = 2024-06-18 20:15:30 in Shanghai
    assert (o.placed_at, o.paid_at, o.updated_at, o.promised_ship_by) == (
        utc(2024, 6, 18, 12, 15, 30),
        utc(2024, 6, 18, 12, 15, 50),
        utc(2024, 6, 18, 12, 16),
        utc(2024, 6, 20, 15, 59, 59),
    )
    assert o.buyer == Buyer("1@#Vb3kQmZ9pLx2T7yRc4WnE8fHs1aD", None, "13723456789", None, None)
    assert o.address == Address(
        "李娜",
        "13723456789",
        "CN",
        "广东省",
        "深圳市",
        "南山区",
        "粤海街道 科技南十二路 2 号 金蝶软件园 B 座 6 楼",
        None,
    )
    puer, knife = o.lines
    assert (puer.external_line_id, puer.external_item_id, puer.external_sku_id) == (
        "6920145678901234568",
        "3601234567890123456",
        "1782345678901234",
    )
    assert (puer.title, puer.quantity, puer.unit_price, puer.discount, puer.total) == (
        "云南普洱 熟茶饼 357g 年份:2019",
        2,
        D("128.00"),  # 12800 fen
        D("25.60"),
        D("230.40"),
    )
    assert (knife.is_gift, knife.total) == (True, D("0.00"))  # given_product_type FREE
    assert o.amounts == Amounts(D("256.00"), D("6.00"), D("25.60"), D("0.00"), D("236.40"), D("236.40"))
    assert (o.buyer_note, o.seller_note) == ("周末也可以送", None)


def test_douyin_variants_cancel_refund_and_errors():
    adapter = get_adapter("douyin")
    shipped = order("douyin", "order_updated.json")
    assert shipped.status == "shipped"
    assert shipped.address.phone.startswith("$$") and shipped.address.name.startswith(
        "##"
    )  # cipher passed through
    assert shipped.address.street.startswith("粤海街道 ##")
    no_own_discounts = doc("douyin", "order.json")
    for sku in no_own_discounts["data"]["shop_order_detail"]["sku_order_list"]:
        del sku["promotion_amount"]
    allocated = adapter.parse_order(no_own_discounts)
    assert [line.discount for line in allocated.lines] == [D("25.60"), D("0.00")]
    refunded = doc("douyin", "order.json")
    refunded["data"]["shop_order_detail"].update(order_status=4, main_status=21)
    assert adapter.parse_order(refunded).status == "refunded"
    c = adapter.parse_cancel(raw("douyin", "cancel.json"))
    assert (c.external_id, c.reason, c.cancelled_at) == (
        "6920145678901234567",
        "不想要了",
        utc(2024, 6, 18, 13, 15, 30),
    )
    r = adapter.parse_refund(raw("douyin", "refund.json"))
    assert (r.external_id, r.external_refund_id, r.line_ids) == (
        "6920145678901234567",
        "7381234567890123456",
        ("6920145678901234568",),
    )
    assert (r.amount, r.refunded_at) == (D("115.20"), utc(2024, 6, 22, 11, 30))
    bad(adapter.parse_refund, raw("douyin", "cancel.json"), "[0].tag", "expected 206")
    bad(
        adapter.parse_order,
        raw("douyin", "malformed.json"),
        "data.shop_order_detail.create_time",
        "not a whole number",
    )
    error = {
        "code": 30002,
        "msg": "权限不足",
        "sub_code": "isv.permission-denied",
        "sub_msg": "无订单读取权限",
    }
    bad(
        adapter.parse_order,
        error,
        "code",
        "Douyin API error 30002: 权限不足 (isv.permission-denied 无订单读取权限)",
    )
    body = adapter.render_inventory_update(ListingRef("3601234567890123456", "1782345678901234"), 40)
    assert body == {
        "product_id": 3601234567890123456,
        "sku_id": 1782345678901234,
        "stock_num": 40,
        "incremental": False,
    }
    with pytest.raises(AdapterError, match=r"listing\.external_sku_id"):
        adapter.render_inventory_update(ListingRef("3601234567890123456", "PE-357"), 1)


# -- generic JSON ------------------------------------------------------------------------------------------


def test_generic_order():
    o = order("generic")
    assert (o.external_id, o.channel_platform, o.status, o.business_model) == (
        "WEB-20240618-0042",
        "generic",
        "paid",
        "b2c",
    )
    assert (o.placed_at, o.paid_at, o.updated_at, o.promised_ship_by) == (
        utc(2024, 6, 18, 2, 15),
        utc(2024, 6, 18, 2, 15, 40),
        utc(2024, 6, 18, 2, 15, 41),
        utc(2024, 6, 20, 10),
    )
    assert o.buyer == Buyer("u-88231", "赵雪", "13501234567", "zhao.xue@example.cn", "雪落成都")
    assert o.address == Address(
        "赵雪",
        "13501234567",
        "CN",
        "四川省",
        "成都市",
        "武侯区",
        "天府大道北段 1700 号 环球中心 W6 区 2208",
        "610041",
    )
    scarf, gloves, bag = o.lines
    assert (scarf.discount, scarf.total) == (D("25.43"), D("373.57"))  # 20.00 own + share of the 10.00
    assert (gloves.external_item_id, gloves.discount, gloves.total) == ("", D("4.57"), D("314.43"))
    assert (bag.is_gift, bag.total) == (True, D("0.00"))
    assert o.amounts == Amounts(D("718.00"), D("12.00"), D("30.00"), D("0.00"), D("700.00"), D("700.00"))
    assert (o.requested_carrier, o.buyer_note, o.seller_note) == ("SF", "请附赠贺卡", "会员日订单")
    assert (o.invoice.title, o.invoice.tax_id) == ("成都雪域文化传播有限公司", "91510107MA6C8XXX1K")


def test_generic_variants_and_errors():
    adapter = get_adapter("generic")
    assert get_adapter("web").parse_order(raw("generic", "order.json")).channel_platform == "web"
    assert get_adapter("b2b").parse_order(raw("generic", "order.json")).business_model == "b2b"
    c = adapter.parse_cancel(raw("generic", "cancel.json"))
    assert (c.external_id, c.reason, c.cancelled_at) == (
        "WEB-20240618-0042",
        "顾客改变主意",
        utc(2024, 6, 18, 3, 2),
    )
    r = adapter.parse_refund(raw("generic", "refund.json"))
    assert (r.external_refund_id, r.line_ids, r.amount) == ("RF-0007", ("2",), D("314.43"))
    bad(
        adapter.parse_order,
        raw("generic", "malformed.json"),
        "lines[0].unit_price",
        "more than two decimal places",
    )
    wrong_total = {**doc("generic", "order.json"), "total": "701.00"}
    bad(
        adapter.parse_order,
        wrong_total,
        "total",
        "differs from subtotal 718.00 - discounts 30.00 + shipping 12.00 + tax 0.00 = 700.00",
    )
    bad(
        adapter.parse_order,
        {**doc("generic", "order.json"), "format": "oms.order.v2"},
        "format",
        "expected 'oms.order.v1'",
    )
    bad(
        adapter.parse_order,
        {**doc("generic", "order.json"), "status": "open"},
        "status",
        "'open' is not one of",
    )
    bad(
        adapter.parse_order,
        {**doc("generic", "order.json"), "order_discount": "800.00"},
        "order_discount",
        "exceeds",
    )
    bad(
        adapter.parse_order,
        {**doc("generic", "order.json"), "placed_at": "2024-06-18T10:15:00"},
        "placed_at",
        "no UTC offset",
    )
    no_sku = doc("generic", "order.json")
    del no_sku["lines"][1]["sku_id"]
    bad(adapter.parse_order, no_sku, "lines[1].sku_id", "item_id or a sku_id")
    assert adapter.render_inventory_update(ListingRef("SPU-1001", "SKU-1001-RED-M"), 3) == {
        "item_id": "SPU-1001",
        "sku_id": "SKU-1001-RED-M",
        "quantity": 3,
    }


# -- CSV ---------------------------------------------------------------------------------------------------


def csv_mapping() -> dict[str, str]:
    return json.loads(raw("csv", "mapping.json"))


def test_csv_import():
    results = parse_csv(raw("csv", "orders.csv").decode(), csv_mapping())
    assert [r.external_id for r in results] == ["POS-1001", "POS-1002", "POS-1003"]
    first, second, third = results
    assert (first.channel_platform, first.status, first.business_model, first.currency) == (
        "csv",
        "paid",
        "o2o",
        "CNY",
    )
    assert first.placed_at == first.paid_at == utc(2024, 6, 18, 6, 2, 11)  # naive times are Asia/Shanghai
    assert third.placed_at == utc(2024, 6, 18, 15, 59, 59)
    assert first.address == Address(
        "刘洋", "13911112222", "CN", "上海市", "上海市", "静安区", "南京西路 1266 号 恒隆广场 5 楼", None
    )
    assert [(line.external_line_id, line.external_sku_id, line.quantity) for line in first.lines] == [
        ("1", "SKU-1001-RED-M", 1),
        ("2", "SKU-2002", 2),
    ]
    assert [line.discount for line in first.lines] == [D("16.67"), D("13.33")]  # 30.00 on 399 : 319
    assert [line.discount for line in third.lines] == [D("88.24"), D("11.76")]  # 100.00 on 1197 : 159.50
    assert first.amounts == Amounts(D("718.00"), D("0.00"), D("30.00"), D("0.00"), D("688.00"), D("688.00"))
    assert second.lines[0].title == "桑蚕丝眼罩, 黛青" and second.amounts.shipping == D("8.00")


def test_csv_bad_rows_are_reported_with_their_line_numbers():
    results = parse_csv(raw("csv", "orders_bad.csv").decode(), csv_mapping())
    assert isinstance(results[0], NormalizedOrder) and results[0].external_id == "POS-2001"
    errors = results[1:]
    assert all(isinstance(e, AdapterError) for e in errors)
    assert [str(e) for e in errors] == [
        "line 3: 数量: '两' is not a whole number (order POS-2002 skipped)",
        "line 6: 下单时间: '2024-06-19 11:30:00' differs from line 5 of the same order"
        " (order POS-2003 skipped)",
        "line 7: 订单号: is empty",
        "line 8: 单价: 'abc' is not an amount (order POS-2004 skipped)",
        "line 9: 整单优惠: order discount 200.00 exceeds the lines' total 159.50 (order POS-2005 skipped)",
    ]
    assert [e.line for e in errors] == [3, 6, 7, 8, 9]
    # POS-2002's good second row (line 4) is not imported on its own
    assert "POS-2002" not in {r.external_id for r in results if isinstance(r, NormalizedOrder)}


def test_csv_mapping_and_format_errors():
    text = "order,when,sku,qty,price\n"
    mapping = {
        "order_id": "order",
        "placed_at": "when",
        "sku_id": "sku",
        "quantity": "qty",
        "unit_price": "price",
    }
    bad(lambda t: parse_csv(t, mapping), text, "mapping", "required fields are not mapped: currency")
    bad(
        lambda t: parse_csv(t, {**mapping, "currency": "cur"}),
        text,
        "mapping.currency",
        "column 'cur' is not in the header",
    )
    bad(
        lambda t: parse_csv(t, {**mapping, "currency": "=CNY", "colour": "=red"}),
        text,
        "mapping.colour",
        "not a CSV field",
    )
    bad(lambda t: parse_csv(t, mapping), "", "header", "empty")
    quoted = (
        text
        + 'A-1,2024-06-18T10:00:00+08:00,S1,1,"10.00"\n'
        + 'A-2,2024-06-18 10:00:00,"S\n2",1,5.00\n'  # a quoted cell spanning lines 3-4
        + "A-3,2024-06-18T10:00:00+08:00,S3,1,x\n"
    )
    results = parse_csv(quoted, {**mapping, "currency": "=CNY"})
    assert results[0].external_id == "A-1"
    assert [str(e) for e in results[1:]] == [
        "line 3: when: '2024-06-18 10:00:00' has no UTC offset (order A-2 skipped)",
        "line 5: price: 'x' is not an amount (order A-3 skipped)",  # the quoted cell spanned lines 3-4
    ]


def test_csv_adapter_takes_one_order():
    adapter = CsvAdapter(csv_mapping())
    single = "\n".join(raw("csv", "orders.csv").decode().splitlines()[:3]) + "\n"
    o = adapter.parse_order(single.encode())
    assert (o.external_id, len(o.lines)) == ("POS-1001", 2)
    bad(adapter.parse_order, raw("csv", "orders.csv"), "$", "holds 3 orders")
    with pytest.raises(AdapterError, match="line 3: 数量"):
        adapter.parse_order(raw("csv", "orders_bad.csv"))
    assert get_adapter("csv").render_inventory_update(ListingRef("I", "S"), 2) == {
        "item_id": "I",
        "sku_id": "S",
        "quantity": 2,
    }
