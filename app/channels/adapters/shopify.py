"""Shopify: the Admin REST ``Order`` resource as delivered by the ``orders/create``, ``orders/updated``,
``orders/paid`` and ``orders/cancelled`` webhooks (a bare order object; ``GET orders/{id}.json``'s
``{"order": …}`` wrapper is accepted too), and the ``refunds/create`` webhook (a ``Refund`` object).

Fields used (shopify.dev, Admin REST Order): ``id``, ``name``, ``currency`` (shop currency; the plain
amount fields are in it), ``created_at``/``processed_at``/``updated_at``/``cancelled_at``/``closed_at`` (ISO
8601 with offset), ``financial_status`` (pending, authorized, partially_paid, paid, partially_refunded,
refunded, voided), ``fulfillment_status`` (null, partial, fulfilled), ``line_items[]`` (``id``,
``product_id``, ``variant_id``, ``title``, ``variant_title``, ``quantity``, ``price``,
``discount_allocations[].amount``), ``shipping_lines[]`` (``title``, ``price``, ``discounted_price``),
``total_price``, ``total_tax``, ``taxes_included``, ``total_outstanding``, ``customer``,
``shipping_address``, ``note``, ``company`` (B2B orders).

Shopify already allocates every discount to the lines (``discount_allocations``), so nothing is
re-allocated here. ``authorized`` counts as paid: the payment is secured and is captured at fulfilment.

Webhooks are signed with ``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(app secret, raw body)).
Stock is set with ``POST /admin/api/{version}/inventory_levels/set.json`` (per inventory item and location).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from app.channels.adapters import _values as v
from app.channels.adapters._lines import LineDraft, build_lines, sum_money
from app.channels.adapters._payload import Node
from app.channels.adapters.base import ChannelAdapter, ListingRef, Raw, check_quantity, header
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

_PAID = {"paid", "partially_refunded", "refunded", "authorized"}
_UNPAID = {"pending", "partially_paid", "unpaid"}


def _unwrap(raw: Raw, key: str) -> Node:
    root = Node.load(raw)
    return root.obj(key) if root.has(key) and isinstance(root.raw(key), Mapping) else root


def _status(o: Node) -> str:
    financial = o.text("financial_status") or "pending"
    fulfillment = o.text("fulfillment_status")
    if financial == "refunded":
        return "refunded"
    if o.has("cancelled_at") or financial == "voided":
        return "cancelled"
    if financial in _UNPAID:
        return "pending_payment"
    if financial not in _PAID:
        raise o.error("financial_status", f"unknown status {financial!r}")
    if fulfillment == "fulfilled":
        return "completed" if o.has("closed_at") else "shipped"
    if fulfillment == "partial":
        return "partially_shipped"
    if fulfillment not in (None, "unfulfilled", "restocked"):
        raise o.error("fulfillment_status", f"unknown status {fulfillment!r}")
    return "paid"


def _person(node: Node | None) -> str | None:
    if node is None:
        return None
    return node.text("name") or v.text(
        " ".join(p for p in (node.text("first_name"), node.text("last_name")) if p)
    )


def _address(a: Node | None) -> Address:
    if a is None:
        return Address()
    street = " ".join(p for p in (a.text("address1"), a.text("address2")) if p)
    return Address(
        name=_person(a),
        phone=v.phone(a.text("phone")),
        country=a.text("country_code") or a.text("country"),
        province=a.text("province"),
        city=a.text("city"),
        district=None,
        street=street or None,
        postcode=a.text("zip"),
    )


class ShopifyAdapter(ChannelAdapter):
    platform = "shopify"
    inventory_api = "POST /admin/api/{version}/inventory_levels/set.json"
    signature_header = "X-Shopify-Hmac-Sha256"

    def parse_order(self, raw: Raw) -> NormalizedOrder:
        o = _unwrap(raw, "order")
        status = _status(o)
        drafts = []
        for li in o.objs("line_items"):
            quantity = li.quantity("quantity")
            price = li.money("price")
            allocations = li.objs("discount_allocations", required=False)
            discount = (
                sum_money(a.money("amount") for a in allocations)
                if allocations
                else li.money("total_discount", v.ZERO)
            )
            title = (
                " - ".join(p for p in (li.text("title", MAX_TITLE), li.text("variant_title")) if p)
                or li.text("name", MAX_TITLE)
                or ""
            )
            drafts.append(
                LineDraft(
                    line_id=li.ident("id"),
                    item_id=li.opt_ident("product_id") or "",
                    sku_id=li.opt_ident("variant_id") or "",
                    title=title,
                    quantity=quantity,
                    unit_price=price,
                    gross=price * quantity,
                    discount=discount,
                    path=li.path,
                )
            )
        lines = build_lines(drafts)
        shipping_lines = o.objs("shipping_lines", required=False)
        shipping = sum_money(s.money("discounted_price", s.money("price", v.ZERO)) for s in shipping_lines)
        tax = v.ZERO if o.flag("taxes_included") else o.money("total_tax", v.ZERO)
        total = o.money("total_price")
        if o.has("total_outstanding"):
            paid = total - o.money("total_outstanding")
        else:
            paid = total if o.text("financial_status") in _PAID else v.ZERO
        customer = o.opt_obj("customer")
        buyer = Buyer(
            platform_buyer_id=customer.opt_ident("id") if customer else None,
            name=_person(customer),
            phone=v.phone(o.text("phone") or (customer.text("phone") if customer else None)),
            email=v.email(
                o.text("email") or o.text("contact_email") or (customer.text("email") if customer else None)
            ),
        )
        processed = o.iso_time("processed_at", required=False)
        return NormalizedOrder(
            external_id=o.ident("id"),
            channel_platform=self.platform,
            status=status,
            placed_at=o.iso_time("created_at"),
            paid_at=(processed or o.iso_time("created_at")) if o.text("financial_status") in _PAID else None,
            updated_at=o.iso_time("updated_at"),
            currency=o.ident("currency").upper(),
            business_model="b2b" if o.has("company") else "b2c",
            buyer=buyer,
            address=_address(o.opt_obj("shipping_address") or o.opt_obj("billing_address")),
            lines=lines,
            amounts=Amounts(
                subtotal=sum_money(d.gross for d in drafts),
                shipping=shipping,
                discount=sum_money(line.discount for line in lines),
                tax=tax,
                total=total,
                paid=paid,
            ),
            requested_carrier=shipping_lines[0].text("title") if shipping_lines else None,
            buyer_note=o.text("note", MAX_NOTE),
            raw_status=f"{o.text('financial_status')}/{o.text('fulfillment_status') or 'unfulfilled'}"
            + ("/cancelled" if o.has("cancelled_at") else ""),
            extra=(("name", o.text("name") or ""),),
        )

    def parse_cancel(self, raw: Raw) -> NormalizedCancel:
        o = _unwrap(raw, "order")
        if not o.has("cancelled_at"):
            raise o.error("cancelled_at", "is required: this order is not cancelled")
        return NormalizedCancel(
            external_id=o.ident("id"), reason=o.text("cancel_reason"), cancelled_at=o.iso_time("cancelled_at")
        )

    def parse_refund(self, raw: Raw) -> NormalizedRefund:
        r = _unwrap(raw, "refund")
        transactions = [
            t
            for t in r.objs("transactions", required=False)
            if t.text("kind") == "refund" and t.text("status") in (None, "success")
        ]
        return NormalizedRefund(
            external_id=r.ident("order_id"),
            external_refund_id=r.ident("id"),
            line_ids=tuple(li.ident("line_item_id") for li in r.objs("refund_line_items", required=False)),
            amount=sum_money(t.money("amount") for t in transactions),
            reason=r.text("note", MAX_NOTE),
            refunded_at=r.iso_time("processed_at", required=False) or r.iso_time("created_at"),
        )

    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]:
        ids = {}
        for field in ("external_inventory_id", "external_location_id"):
            value = getattr(listing, field)
            if not value or not str(value).isdigit():
                raise AdapterError(
                    f"listing.{field}",
                    "Shopify sets stock per inventory item and location: a numeric id is required",
                )
            ids[field] = int(value)
        return {
            "location_id": ids["external_location_id"],
            "inventory_item_id": ids["external_inventory_id"],
            "available": check_quantity(quantity),
        }

    def verify_signature(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        received = header(headers, self.signature_header or "")
        if not received or not secret:
            return False
        digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
        expected = base64.b64encode(digest)
        return hmac.compare_digest(expected, received.strip().encode("ascii", "replace"))


ADAPTERS = (ShopifyAdapter(),)
