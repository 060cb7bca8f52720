"""Douyin shop (抖店, open platform "jinritemai").

Orders: the ``order.orderDetail`` response ``{"code": 10000, "msg": "success", "data": {"shop_order_detail":
ShopOrder}}`` (any other ``code`` is an API error and reported with ``msg``/``sub_code``/``sub_msg``).
ShopOrder fields used: ``order_id``, ``order_status`` (1 awaiting payment, 103 part paid, 105 paid under risk
review, 2 paid/preparing, 101 part shipped, 3 shipped, 4 cancelled, 5 completed), ``main_status`` (21/22/39
= closed by a full refund), ``create_time`` / ``pay_time`` / ``update_time`` / ``exp_ship_time`` (Unix
seconds), ``pay_amount``, ``post_amount``, ``promotion_amount`` (fen), ``buyer_words``, ``seller_words``,
``doudian_open_id``, ``post_receiver`` / ``post_tel`` (or their ``encrypt_*`` cipher texts, passed through
for ``order.batchDecrypt``), ``post_addr`` (``province``/``city``/``town``/``street`` ``{id, name}``,
``detail`` or ``encrypt_detail``) and ``sku_order_list[]`` (``order_id`` = the line, ``sku_id``,
``product_id``, ``product_name``, ``spec[]``, ``item_num``, ``origin_amount`` = unit price in fen,
``promotion_amount``, ``given_product_type`` FREE = gift).

Every amount is an integer number of fen. Line discounts are Douyin's own ``promotion_amount`` per SKU
order; when those are absent the order's ``promotion_amount`` is allocated in proportion.

Cancellations and refunds arrive as message pushes ``[{"tag", "msg_id", "data": "<json text>"}]``:
tag 106 ``doudian_trade_TradeCanceled`` (``p_id``, ``s_ids``, ``cancel_time``, ``cancel_reason``) and
tag 206 ``doudian_refund_RefundSuccess`` (``p_id``, ``s_id``, ``aftersale_id``, ``aftersale_type`` 2 =
whole order before shipping, ``refund_amount`` in fen, ``success_time``). Stock: ``sku.syncStock``.
"""

from __future__ import annotations

from typing import Any

from app.channels.adapters import _values as v
from app.channels.adapters._lines import LineDraft, build_lines, sum_money
from app.channels.adapters._payload import Node, decode
from app.channels.adapters.base import ChannelAdapter, ListingRef, Raw, check_quantity
from app.channels.normalized import (
    MAX_NOTE,
    MAX_TITLE,
    AdapterError,
    Address,
    Amounts,
    Buyer,
    NormalizedCancel,
    NormalizedOrder,
    NormalizedRefund,
)

STATUS = {
    "1": "pending_payment",
    "103": "pending_payment",
    "105": "paid",
    "2": "paid",
    "101": "partially_shipped",
    "3": "shipped",
    "4": "cancelled",
    "5": "completed",
}
REFUNDED_MAIN_STATUS = {"21", "22", "39"}


def _detail(raw: Raw) -> Node:
    root = Node.load(raw)
    code = root.text("code")
    if code != "10000":
        detail = " ".join(x for x in (root.text("sub_code"), root.text("sub_msg")) if x)
        raise AdapterError(
            "code", f"Douyin API error {code}: {root.text('msg')}" + (f" ({detail})" if detail else "")
        )
    return root.obj("data").obj("shop_order_detail")


def _message(raw: Raw, tag: str, name: str) -> Node:
    decoded = decode(raw)
    messages = decoded if isinstance(decoded, list) else [decoded]
    if len(messages) != 1:
        raise AdapterError("$", f"holds {len(messages)} messages; store one message per payload")
    msg = Node(messages[0], "[0]" if isinstance(decoded, list) else "")
    if msg.text("tag") != tag:
        raise msg.error("tag", f"is {msg.text('tag')!r}, expected {tag} ({name})")
    data = msg.need("data")
    return Node(
        decode(data, f"{msg.at('data')} (message data)") if isinstance(data, str) else data, msg.at("data")
    )


class DouyinAdapter(ChannelAdapter):
    platform = "douyin"
    inventory_api = "sku.syncStock"

    def parse_order(self, raw: Raw) -> NormalizedOrder:
        o = _detail(raw)
        raw_status = o.ident("order_status")
        status = v.map_status(raw_status, STATUS, o.at("order_status"))
        if status == "cancelled" and o.text("main_status") in REFUNDED_MAIN_STATUS:
            status = "refunded"
        skus = o.objs("sku_order_list")
        own_discounts = all(s.has("promotion_amount") for s in skus)
        drafts = []
        for s in skus:
            quantity = s.quantity("item_num")
            unit = s.cents("origin_amount")
            spec = " ".join(f"{x.text('name')}:{x.text('value')}" for x in s.objs("spec", required=False))
            drafts.append(
                LineDraft(
                    line_id=s.ident("order_id"),
                    item_id=s.ident("product_id"),
                    sku_id=s.opt_ident("sku_id") or "",
                    title=" ".join(p for p in (s.text("product_name", MAX_TITLE), spec) if p),
                    quantity=quantity,
                    unit_price=unit,
                    gross=unit * quantity,
                    discount=s.cents("promotion_amount") if own_discounts else v.ZERO,
                    gift=True if s.text("given_product_type") == "FREE" else None,
                    path=s.path,
                )
            )
        order_discount = v.ZERO if own_discounts else o.cents("promotion_amount", v.ZERO)
        lines = build_lines(drafts, order_discount, o.at("promotion_amount"))
        subtotal = sum_money(d.gross for d in drafts)
        discount = sum_money(line.discount for line in lines)
        shipping = o.cents("post_amount", v.ZERO)
        paid_at = o.unix_time("pay_time", required=False)
        addr = o.opt_obj("post_addr") or Node({}, o.at("post_addr"))
        receiver = o.text("post_receiver") or o.text("encrypt_post_receiver")
        tel = v.phone(o.text("post_tel") or o.text("encrypt_post_tel"))
        return NormalizedOrder(
            external_id=o.ident("order_id"),
            channel_platform=self.platform,
            status=status,
            placed_at=o.unix_time("create_time"),
            paid_at=paid_at,
            updated_at=o.unix_time("update_time", required=False) or o.unix_time("create_time"),
            currency="CNY",
            business_model="b2c",
            buyer=Buyer(platform_buyer_id=o.text("doudian_open_id"), phone=tel),
            address=Address(
                name=receiver,
                phone=tel,
                country="CN",
                province=_name(addr, "province"),
                city=_name(addr, "city"),
                district=_name(addr, "town"),
                street=" ".join(
                    p
                    for p in (_name(addr, "street"), addr.text("detail") or addr.text("encrypt_detail"))
                    if p
                )
                or None,
            ),
            lines=lines,
            amounts=Amounts(
                subtotal=subtotal,
                shipping=shipping,
                discount=discount,
                tax=v.ZERO,
                total=subtotal - discount + shipping,
                paid=o.cents("pay_amount", v.ZERO) if paid_at else v.ZERO,
            ),
            promised_ship_by=o.unix_time("exp_ship_time", required=False),
            buyer_note=o.text("buyer_words", MAX_NOTE),
            seller_note=o.text("seller_words", MAX_NOTE),
            raw_status=f"{raw_status}/{o.text('main_status')}" if o.has("main_status") else raw_status,
        )

    def parse_cancel(self, raw: Raw) -> NormalizedCancel:
        d = _message(raw, "106", "doudian_trade_TradeCanceled")
        return NormalizedCancel(
            external_id=d.ident("p_id"),
            reason=d.text("cancel_reason"),
            cancelled_at=d.unix_time("cancel_time"),
        )

    def parse_refund(self, raw: Raw) -> NormalizedRefund:
        d = _message(raw, "206", "doudian_refund_RefundSuccess")
        order_id, line_id = d.ident("p_id"), d.opt_ident("s_id")
        whole_order = d.text("aftersale_type") == "2" or not line_id or line_id == order_id
        return NormalizedRefund(
            external_id=order_id,
            external_refund_id=d.ident("aftersale_id"),
            line_ids=() if whole_order else (line_id,),
            amount=d.cents("refund_amount"),
            reason=d.text("latest_record")
            or (f"reason_code {d.text('reason_code')}" if d.has("reason_code") else None),
            refunded_at=d.unix_time("success_time"),
        )

    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key, field in (("product_id", "external_item_id"), ("sku_id", "external_sku_id")):
            value = getattr(listing, field)
            if not value.isdigit():
                raise AdapterError(f"listing.{field}", f"{value!r} is not a numeric Douyin {key}")
            body[key] = int(value)
        body.update(stock_num=check_quantity(quantity), incremental=False)  # set the figure, do not add to it
        return body


def _name(addr: Node, key: str) -> str | None:
    part = addr.opt_obj(key)
    return part.text("name") if part else None


ADAPTERS = (DouyinAdapter(),)
