"""Taobao and Tmall: the TOP (Taobao Open Platform) trade API, JSON format.

Orders: the ``taobao.trade.fullinfo.get`` response ``{"trade_fullinfo_get_response": {"trade": Trade}}``
(a TOP ``{"error_response": {code, msg, sub_code, sub_msg}}`` is reported as such). Trade fields used:
``tid``, ``status`` (TRADE_NO_CREATE_PAY, WAIT_BUYER_PAY, PAY_PENDING, WAIT_PRE_AUTH_CONFIRM,
WAIT_SELLER_SEND_GOODS, PAID_FORBID_CONSIGN, SELLER_CONSIGNED_PART, WAIT_BUYER_CONFIRM_GOODS,
TRADE_BUYER_SIGNED, TRADE_FINISHED, TRADE_CLOSED = refunded after payment, TRADE_CLOSED_BY_TAOBAO = closed
before payment), ``type`` (fenxiao = distribution, o2o_offlinetrade = O2O), ``created`` / ``pay_time`` /
``modified`` (``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai), ``payment`` (what the buyer pays, postage
included), ``post_fee``, ``order_tax_fee`` (Tmall Global), ``buyer_nick``, ``buyer_open_uid``,
``buyer_message``, ``seller_memo``, ``invoice_name``/``invoice_type``, ``rt_omni_send_type``
(pickUp/storeSend = O2O) and ``receiver_name/_mobile/_phone/_country/_state/_city/_district/_town/
_address/_zip``. Sub-orders ``orders.order[]``: ``oid``, ``num_iid``, ``sku_id``, ``title``,
``sku_properties_name``, ``num``, ``price`` (unit), ``total_fee`` (price x num + adjust_fee - discount_fee,
i.e. after sub-order discounts), ``part_mjz_discount`` (the trade-level discount Taobao allocated to it).

Discounts: each line's own discount is ``price x num - total_fee``. The trade-level discount (shop coupons,
满减) is ``sum(total_fee) + post_fee + tax - payment``; when Taobao has not allocated it
(``part_mjz_discount`` absent) it is allocated here in proportion to each line's ``total_fee``.

Refunds: the ``taobao.refund.get`` response ``{"refund_get_response": {"refund": Refund}}`` (``refund_id``,
``tid``, ``oid``, ``refund_fee``, ``reason``, ``status``, ``modified``); only ``status = SUCCESS`` is a
refund. Cancellations: a fullinfo payload whose trade is TRADE_CLOSED_BY_TAOBAO or TRADE_CLOSED.
Stock: ``taobao.item.quantity.update`` (``num_iid``, ``sku_id``, ``quantity``, ``type`` 1 = full).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.channels.adapters import _values as v
from app.channels.adapters._lines import LineDraft, build_lines, sum_money
from app.channels.adapters._payload import Node
from app.channels.adapters.base import ChannelAdapter, ListingRef, Raw, check_quantity
from app.channels.normalized import (
    MAX_NOTE,
    MAX_TITLE,
    AdapterError,
    Address,
    Amounts,
    Buyer,
    Invoice,
    NormalizedCancel,
    NormalizedOrder,
    NormalizedRefund,
)

STATUS = {
    "TRADE_NO_CREATE_PAY": "pending_payment",
    "WAIT_BUYER_PAY": "pending_payment",
    "PAY_PENDING": "pending_payment",
    "WAIT_PRE_AUTH_CONFIRM": "pending_payment",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "PAID_FORBID_CONSIGN": "paid",
    "SELLER_CONSIGNED_PART": "partially_shipped",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "shipped",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "refunded",
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",
}


def top_response(raw: Raw, key: str) -> Node:
    """The body of a TOP response, or an AdapterError carrying TOP's own error."""
    root = Node.load(raw)
    if root.has("error_response"):
        e = root.obj("error_response")
        detail = " ".join(str(x) for x in (e.text("sub_code"), e.text("sub_msg")) if x)
        raise AdapterError(
            "error_response",
            f"TOP error {e.text('code')} {e.text('msg') or ''}".strip() + (f": {detail}" if detail else ""),
        )
    return root.obj(key)


def _business_model(t: Node) -> str:
    if t.text("type") == "fenxiao":
        return "distribution"
    if t.text("type") == "o2o_offlinetrade" or t.text("rt_omni_send_type") in ("pickUp", "storeSend"):
        return "o2o"
    return "b2c"


class TaobaoAdapter(ChannelAdapter):
    inventory_api = "taobao.item.quantity.update"

    def __init__(self, platform: str) -> None:
        self.platform = platform

    def parse_order(self, raw: Raw) -> NormalizedOrder:
        t = top_response(raw, "trade_fullinfo_get_response").obj("trade")
        raw_status = t.ident("status")
        status = v.map_status(raw_status, STATUS, t.at("status"))
        drafts: list[LineDraft] = []
        allocated: list[Decimal | None] = []
        for o in t.obj("orders").objs("order"):
            quantity = o.quantity("num")
            price = o.money("price")
            gross = price * quantity
            net = o.money("total_fee")
            title = " ".join(p for p in (o.text("title", MAX_TITLE), o.text("sku_properties_name")) if p)
            drafts.append(
                LineDraft(
                    line_id=o.ident("oid"),
                    item_id=o.ident("num_iid"),
                    sku_id=o.opt_ident("sku_id") or "",
                    title=title,
                    quantity=quantity,
                    unit_price=price,
                    gross=gross,
                    discount=gross - net,
                    path=o.path,
                )
            )
            allocated.append(o.money("part_mjz_discount") if o.has("part_mjz_discount") else None)
        shipping = t.money("post_fee", v.ZERO)
        tax = t.money("order_tax_fee", v.ZERO)
        payment = t.money("payment")
        goods = sum_money(d.gross - d.discount for d in drafts)
        trade_discount = goods + shipping + tax - payment
        if trade_discount < 0:
            raise t.error("payment", f"{payment} exceeds the goods {goods} + post_fee {shipping} + tax {tax}")
        if allocated and all(a is not None for a in allocated) and sum_money(allocated) == trade_discount:
            for d, share in zip(drafts, allocated, strict=True):
                d.discount += share  # Taobao's own allocation
            lines = build_lines(drafts)
        else:
            lines = build_lines(drafts, trade_discount, t.at("payment"))
        subtotal = sum_money(d.gross for d in drafts)
        discount = sum_money(line.discount for line in lines)
        pay_time = t.local_time("pay_time", required=False)
        country = t.text("receiver_country")
        return NormalizedOrder(
            external_id=t.ident("tid"),
            channel_platform=self.platform,
            status=status,
            placed_at=t.local_time("created"),
            paid_at=pay_time,
            updated_at=t.local_time("modified"),
            currency="CNY",
            business_model=_business_model(t),
            buyer=Buyer(
                platform_buyer_id=t.text("buyer_open_uid"),
                phone=v.phone(t.text("receiver_mobile")),
                email=v.email(t.text("buyer_email")),
                nick=t.text("buyer_nick"),
            ),
            address=Address(
                name=t.text("receiver_name"),
                phone=v.phone(t.text("receiver_mobile") or t.text("receiver_phone")),
                country="CN" if country in (None, "中国", "中国大陆") else country,
                province=t.text("receiver_state"),
                city=t.text("receiver_city") or t.text("receiver_district"),
                district=t.text("receiver_district") if t.text("receiver_city") else None,
                street=" ".join(p for p in (t.text("receiver_town"), t.text("receiver_address")) if p)
                or None,
                postcode=t.text("receiver_zip"),
            ),
            lines=lines,
            amounts=Amounts(
                subtotal=subtotal,
                shipping=shipping,
                discount=discount,
                tax=tax,
                total=subtotal - discount + shipping + tax,
                paid=payment if pay_time else v.ZERO,
            ),
            buyer_note=t.text("buyer_message", MAX_NOTE),
            seller_note=t.text("seller_memo", MAX_NOTE),
            invoice=Invoice(title=t.text("invoice_name") or "", type=t.text("invoice_type"))
            if t.has("invoice_name")
            else None,
            raw_status=raw_status,
        )

    def parse_cancel(self, raw: Raw) -> NormalizedCancel:
        t = top_response(raw, "trade_fullinfo_get_response").obj("trade")
        status = t.ident("status")
        if status not in ("TRADE_CLOSED_BY_TAOBAO", "TRADE_CLOSED"):
            raise t.error("status", f"is {status}: the trade is not closed")
        return NormalizedCancel(
            external_id=t.ident("tid"),
            reason="closed before payment"
            if status == "TRADE_CLOSED_BY_TAOBAO"
            else "closed after a full refund",
            cancelled_at=t.local_time("end_time", required=False) or t.local_time("modified"),
        )

    def parse_refund(self, raw: Raw) -> NormalizedRefund:
        r = top_response(raw, "refund_get_response").obj("refund")
        if r.text("status") != "SUCCESS":
            raise r.error("status", f"is {r.text('status')!r}: only a SUCCESS refund has been paid back")
        oid = r.opt_ident("oid")
        return NormalizedRefund(
            external_id=r.ident("tid"),
            external_refund_id=r.ident("refund_id"),
            line_ids=(oid,) if oid else (),
            amount=r.money("refund_fee"),
            reason=r.text("reason"),
            refunded_at=r.local_time("modified"),
        )

    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]:
        body: dict[str, Any] = {"num_iid": _numeric(listing.external_item_id, "listing.external_item_id")}
        if listing.external_sku_id:
            body["sku_id"] = _numeric(listing.external_sku_id, "listing.external_sku_id")
        body.update(quantity=check_quantity(quantity), type=1)  # 1 = full update (set, not adjust)
        return body


def _numeric(value: str, path: str) -> int:
    if not str(value).isdigit():
        raise AdapterError(path, f"{value!r} is not a numeric Taobao id")
    return int(value)


ADAPTERS = (TaobaoAdapter("taobao"), TaobaoAdapter("tmall"))
