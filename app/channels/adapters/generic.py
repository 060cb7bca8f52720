"""Generic JSON: the order format we define ourselves, for web shops, mini-programs, POS, B2B portals and
anything else that can post JSON. The full specification, with examples, is ``GENERIC.md`` next to
this module; in short::

    {"format": "oms.order.v1", "id": "WEB-10001", "status": "paid",
     "placed_at": "2024-06-18T10:15:00+08:00", "paid_at": "…", "updated_at": "…",
     "currency": "CNY", "business_model": "b2c",
     "buyer": {"id", "name", "phone", "email", "nick"},
     "shipping_address": {"name", "phone", "country", "province", "city", "district", "street", "postcode"},
     "lines": [{"id", "item_id", "sku_id", "title", "quantity", "unit_price", "discount", "is_gift"}],
     "shipping": "0.00", "order_discount": "0.00", "tax": "0.00", "total": "…", "paid": "…",
     "carrier", "ship_by", "buyer_note", "seller_note", "invoice": {"title", "tax_id", "type"}}

    {"format": "oms.cancel.v1", "id", "reason", "cancelled_at"}
    {"format": "oms.refund.v1", "order_id", "refund_id", "line_ids": [], "amount", "reason", "refunded_at"}

Money is a decimal string ("19.90") or an integer; more than two decimal places is an error, not rounded.
Times are ISO 8601 with a UTC offset. ``order_discount`` is allocated over the lines in proportion to
what each line costs after its own ``discount``. ``total``, when sent, must equal
subtotal - discounts + shipping + tax; that check catches most integration bugs on the sender's side.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.channels.adapters import _values as v
from app.channels.adapters._lines import LineDraft, build_lines, sum_money
from app.channels.adapters._payload import Node
from app.channels.adapters.base import ChannelAdapter, ListingRef, Raw, check_quantity
from app.channels.normalized import (
    BUSINESS_MODELS,
    MAX_NOTE,
    MAX_TITLE,
    STATUSES,
    Address,
    Amounts,
    Buyer,
    Invoice,
    NormalizedCancel,
    NormalizedOrder,
    NormalizedRefund,
)

ORDER_FORMAT, CANCEL_FORMAT, REFUND_FORMAT = "oms.order.v1", "oms.cancel.v1", "oms.refund.v1"


def _load(raw: Raw, fmt: str) -> Node:
    n = Node.load(raw)
    if n.text("format") != fmt:
        raise n.error("format", f"is {n.text('format')!r}, expected {fmt!r}")
    return n


def _money(n: Node, key: str, default: Decimal | None = None) -> Decimal:
    if not n.has(key):
        if default is None:
            raise n.error(key, "is required")
        return default
    return v.exact_money(n.raw(key), n.at(key))


def _choice(n: Node, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = n.text(key) or default
    if value not in allowed:
        raise n.error(key, f"{value!r} is not one of {', '.join(allowed)}")
    return value


class GenericAdapter(ChannelAdapter):
    inventory_api = "generic stock row {item_id, sku_id, quantity}"

    def __init__(self, platform: str, default_business_model: str = "b2c") -> None:
        self.platform = platform
        self.default_business_model = default_business_model

    def parse_order(self, raw: Raw) -> NormalizedOrder:
        n = _load(raw, ORDER_FORMAT)
        drafts = []
        for line in n.objs("lines"):
            quantity = line.quantity("quantity")
            price = _money(line, "unit_price")
            drafts.append(
                LineDraft(
                    line_id=line.ident("id"),
                    item_id=line.opt_ident("item_id") or "",
                    sku_id=line.opt_ident("sku_id") or "",
                    title=line.text("title", MAX_TITLE) or "",
                    quantity=quantity,
                    unit_price=price,
                    gross=price * quantity,
                    discount=_money(line, "discount", v.ZERO),
                    gift=line.flag("is_gift"),
                    path=line.path,
                )
            )
            if not (drafts[-1].item_id or drafts[-1].sku_id):
                raise line.error("sku_id", "a line needs an item_id or a sku_id")
        if not drafts:
            raise n.error("lines", "an order needs at least one line")
        lines = build_lines(drafts, _money(n, "order_discount", v.ZERO), n.at("order_discount"))
        subtotal = sum_money(d.gross for d in drafts)
        discount = sum_money(line.discount for line in lines)
        shipping, tax = _money(n, "shipping", v.ZERO), _money(n, "tax", v.ZERO)
        total = subtotal - discount + shipping + tax
        if n.has("total") and _money(n, "total") != total:
            raise n.error(
                "total",
                f"{_money(n, 'total')} differs from subtotal {subtotal} - discounts {discount} "
                f"+ shipping {shipping} + tax {tax} = {total}",
            )
        status = _choice(n, "status", STATUSES)
        paid_at = n.iso_time("paid_at", required=False)
        placed = n.iso_time("placed_at")
        buyer = n.opt_obj("buyer") or Node({}, n.at("buyer"))
        a = n.opt_obj("shipping_address") or Node({}, n.at("shipping_address"))
        invoice = n.opt_obj("invoice")
        return NormalizedOrder(
            external_id=n.ident("id"),
            channel_platform=self.platform,
            status=status,
            placed_at=placed,
            paid_at=paid_at,
            updated_at=n.iso_time("updated_at", required=False) or placed,
            currency=n.ident("currency").upper(),
            business_model=_choice(n, "business_model", BUSINESS_MODELS, self.default_business_model),
            buyer=Buyer(
                platform_buyer_id=buyer.opt_ident("id"),
                name=buyer.text("name"),
                phone=v.phone(buyer.text("phone")),
                email=v.email(buyer.text("email")),
                nick=buyer.text("nick"),
            ),
            address=Address(
                name=a.text("name"),
                phone=v.phone(a.text("phone")),
                country=(a.text("country") or "").upper() or None,
                province=a.text("province"),
                city=a.text("city"),
                district=a.text("district"),
                street=a.text("street"),
                postcode=a.text("postcode"),
            ),
            lines=lines,
            amounts=Amounts(
                subtotal=subtotal,
                shipping=shipping,
                discount=discount,
                tax=tax,
                total=total,
                paid=_money(n, "paid", total if paid_at else v.ZERO),
            ),
            requested_carrier=n.text("carrier"),
            promised_ship_by=n.iso_time("ship_by", required=False),
            buyer_note=n.text("buyer_note", MAX_NOTE),
            seller_note=n.text("seller_note", MAX_NOTE),
            invoice=Invoice(
                title=invoice.text("title") or "", tax_id=invoice.text("tax_id"), type=invoice.text("type")
            )
            if invoice is not None and invoice.has("title")
            else None,
            raw_status=status,
        )

    def parse_cancel(self, raw: Raw) -> NormalizedCancel:
        n = _load(raw, CANCEL_FORMAT)
        return NormalizedCancel(n.ident("id"), n.text("reason"), n.iso_time("cancelled_at"))

    def parse_refund(self, raw: Raw) -> NormalizedRefund:
        n = _load(raw, REFUND_FORMAT)
        ids = n.raw("line_ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str | int) and str(i) for i in ids):
            raise n.error("line_ids", "must be a list of line ids")
        return NormalizedRefund(
            external_id=n.ident("order_id"),
            external_refund_id=n.ident("refund_id"),
            line_ids=tuple(str(i) for i in ids),
            amount=_money(n, "amount"),
            reason=n.text("reason"),
            refunded_at=n.iso_time("refunded_at"),
        )

    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]:
        return {
            "item_id": listing.external_item_id,
            "sku_id": listing.external_sku_id,
            "quantity": check_quantity(quantity),
        }


ADAPTERS = (
    GenericAdapter("generic"),
    GenericAdapter("web"),
    GenericAdapter("mini_program"),
    GenericAdapter("pos"),
    GenericAdapter("manual"),
    GenericAdapter("b2b", default_business_model="b2b"),
)
