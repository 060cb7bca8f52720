"""Amazon Selling Partner API, Orders API v0.

An order is two calls, so the stored payload is an envelope the pipeline writes after fetching both::

    {"order": <getOrder response {"payload": Order}, a getOrders response whose payload.Orders holds
               this one order, or a bare Order>,
     "items": <getOrderItems response {"payload": {"AmazonOrderId", "OrderItems": [...]}}
               or a list of such pages (NextToken pagination)>}

Order fields used (SP-API Orders v0 ``Order``): ``AmazonOrderId``, ``PurchaseDate``, ``LastUpdateDate``
(ISO 8601 UTC), ``OrderStatus`` (PendingAvailability, Pending, Unshipped, PartiallyShipped, Shipped,
InvoiceUnconfirmed, Canceled, Unfulfillable), ``OrderTotal {CurrencyCode, Amount}``, ``FulfillmentChannel``
(AFN = Amazon ships it from its own warehouses: ``fulfilled_by_platform``, so the brand's stock is not
reserved and nothing is routed; MFN = the seller ships it; also kept in ``extra``), ``ShipServiceLevel``,
``LatestShipDate``, ``IsBusinessOrder``, ``ShippingAddress`` (Name, AddressLine1-3, City, District,
StateOrRegion, PostalCode, CountryCode, Phone), ``BuyerInfo`` (BuyerEmail, BuyerName).
``OrderItem``: ``OrderItemId``, ``ASIN``, ``SellerSKU``, ``Title``, ``QuantityOrdered``, and ``Money``
fields ``ItemPrice`` (already price x quantity), ``PromotionDiscount``, ``ShippingPrice``,
``ShippingDiscount``, ``ItemTax``, ``ShippingTax``, ``PromotionDiscountTax``, ``ShippingDiscountTax``.
Pending orders carry no prices (documented): amounts are then 0.00.

Amazon reports no payment time; payment is authorised at purchase, so ``paid_at`` is ``PurchaseDate`` once
the order has left Pending. ``IsGift`` means gift-wrapped for someone else, not a free item, so it does not
set ``is_gift``.

Cancellations: the Notifications API ``ORDER_CHANGE`` notification whose ``Summary.OrderStatus`` is
Canceled (or a getOrder envelope of a Canceled order). Refunds: one Finances API ``ShipmentEvent`` from
``RefundEventList`` (listFinancialEventsByOrderId); its amounts use ``CurrencyAmount``.
Stock: Listings Items API ``patchListingsItem`` (keyed by seller SKU) on ``fulfillment_availability``.
"""

from __future__ import annotations

from typing import Any

from app.channels.adapters import _values as v
from app.channels.adapters._lines import LineDraft, build_lines, sum_money
from app.channels.adapters._payload import Node
from app.channels.adapters.base import ChannelAdapter, ListingRef, Raw, check_quantity
from app.channels.normalized import (
    MAX_TITLE,
    AdapterError,
    Address,
    Amounts,
    Buyer,
    NormalizedCancel,
    NormalizedOrder,
    NormalizedRefund,
    shown,
)

STATUS = {
    "PendingAvailability": "pending_payment",
    "Pending": "pending_payment",
    "Unshipped": "paid",
    "PartiallyShipped": "partially_shipped",
    "Shipped": "shipped",
    "InvoiceUnconfirmed": "shipped",
    "Canceled": "cancelled",
    "Unfulfillable": "cancelled",
}


# Pending orders may come without OrderTotal and prices: the marketplace then tells the currency.
MARKETPLACE_CURRENCY = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
    "A21TJRUUN4KGV": "INR",
}


def _order_node(env: Node) -> Node:
    o = env.obj("order")
    if o.has("AmazonOrderId"):
        return o
    p = o.obj("payload")
    if p.has("Orders"):
        orders = p.objs("Orders")
        if len(orders) != 1:
            raise p.error("Orders", f"holds {len(orders)} orders; store one order per payload")
        return orders[0]
    return p


def _item_pages(env: Node) -> list[Node]:
    items = env.need("items")
    pages = items if isinstance(items, list) else [items]
    return [
        Node(page, f"items[{i}]" if isinstance(items, list) else "items").obj("payload")
        for i, page in enumerate(pages)
    ]


def _amount(node: Node, key: str, currency: str) -> Any:
    m = node.opt_obj(key)
    if m is None:
        return v.ZERO
    code = m.text("CurrencyCode")
    if code and code != currency:
        raise m.error("CurrencyCode", f"{code} differs from the order currency {currency}")
    return m.money("Amount")


class AmazonAdapter(ChannelAdapter):
    platform = "amazon"
    inventory_api = "PATCH /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=…"

    def parse_order(self, raw: Raw) -> NormalizedOrder:
        env = Node.load(raw)
        o = _order_node(env)
        order_id = o.ident("AmazonOrderId")
        status = v.map_status(o.need("OrderStatus"), STATUS, o.at("OrderStatus"))
        total_node = o.opt_obj("OrderTotal")
        pages = _item_pages(env)
        items = [item for page in pages for item in page.objs("OrderItems")]
        currency = total_node.ident("CurrencyCode") if total_node else None
        if currency is None:
            priced = [i.obj("ItemPrice") for i in items if i.has("ItemPrice")]
            currency = (
                priced[0].ident("CurrencyCode")
                if priced
                else MARKETPLACE_CURRENCY.get(o.text("MarketplaceId"))
            )
            if currency is None:
                raise o.error("OrderTotal", "is required to know the order currency (unknown MarketplaceId)")
        for page in pages:
            if page.has("AmazonOrderId") and page.ident("AmazonOrderId") != order_id:
                raise page.error(
                    "AmazonOrderId", f"is {page.ident('AmazonOrderId')}, the order is {order_id}"
                )
        drafts, shipping, tax = [], v.ZERO, v.ZERO
        for item in items:
            quantity = item.quantity("QuantityOrdered", minimum=0)
            if quantity == 0:  # Amazon zeroes the quantity of cancelled items
                continue
            gross = _amount(item, "ItemPrice", currency)
            shipping += _amount(item, "ShippingPrice", currency) - _amount(item, "ShippingDiscount", currency)
            tax += (
                _amount(item, "ItemTax", currency)
                + _amount(item, "ShippingTax", currency)
                - _amount(item, "PromotionDiscountTax", currency)
                - _amount(item, "ShippingDiscountTax", currency)
            )
            drafts.append(
                LineDraft(
                    line_id=item.ident("OrderItemId"),
                    item_id=item.ident("ASIN"),
                    sku_id=item.text("SellerSKU") or "",
                    title=item.text("Title", MAX_TITLE) or "",
                    quantity=quantity,
                    unit_price=v.money(gross / quantity, item.at("ItemPrice")),
                    gross=gross,
                    discount=_amount(item, "PromotionDiscount", currency),
                    gift=None if item.has("ItemPrice") else False,  # Pending orders carry no prices
                    path=item.path,
                )
            )
        lines = build_lines(drafts)
        subtotal = sum_money(d.gross for d in drafts)
        discount = sum_money(line.discount for line in lines)
        total = total_node.money("Amount") if total_node else subtotal - discount + shipping + tax
        settled = status not in ("pending_payment", "cancelled")
        addr = o.opt_obj("ShippingAddress")
        buyer = o.opt_obj("BuyerInfo")
        placed = o.iso_time("PurchaseDate")
        fulfillment_channel = _fulfillment_channel(o)
        return NormalizedOrder(
            external_id=order_id,
            channel_platform=self.platform,
            status=status,
            placed_at=placed,
            paid_at=placed if settled else None,
            updated_at=o.iso_time("LastUpdateDate"),
            currency=currency.upper(),
            business_model="b2b" if o.flag("IsBusinessOrder") else "b2c",
            buyer=Buyer(
                name=buyer.text("BuyerName") if buyer else None,
                email=v.email(buyer.text("BuyerEmail")) if buyer else None,
            ),
            address=_address(addr),
            lines=lines,
            amounts=Amounts(
                subtotal=subtotal,
                shipping=shipping,
                discount=discount,
                tax=tax,
                total=total,
                paid=total if settled else v.ZERO,
            ),
            requested_carrier=o.text("ShipServiceLevel"),
            promised_ship_by=o.iso_time("LatestShipDate", required=False),
            raw_status=str(o.need("OrderStatus")),
            extra=(
                ("fulfillment_channel", fulfillment_channel),
                ("marketplace_id", o.text("MarketplaceId") or ""),
            ),
            fulfilled_by_platform=fulfillment_channel == "AFN",
        )

    def parse_cancel(self, raw: Raw) -> NormalizedCancel:
        root = Node.load(raw)
        if root.has("order"):
            o = _order_node(root)
            if o.text("OrderStatus") != "Canceled":
                raise o.error("OrderStatus", f"is {o.text('OrderStatus')!r}, not Canceled")
            return NormalizedCancel(o.ident("AmazonOrderId"), None, o.iso_time("LastUpdateDate"))
        key = "Payload" if root.has("Payload") else "payload"
        n = root.obj(key).obj("OrderChangeNotification")
        summary = n.obj("Summary")
        if summary.text("OrderStatus") != "Canceled":
            raise summary.error(
                "OrderStatus",
                f"is {summary.text('OrderStatus')!r}, not Canceled: not a cancellation "
                "(a BuyerRequestedChange only asks the seller to cancel)",
            )
        trigger = n.opt_obj("OrderChangeTrigger")
        when = trigger.iso_time("TimeOfOrderChange", required=False) if trigger else None
        event_key = "EventTime" if root.has("EventTime") else "eventTime"
        return NormalizedCancel(
            external_id=n.ident("AmazonOrderId"),
            reason=trigger.text("ChangeReason") if trigger else None,
            cancelled_at=when or root.iso_time(event_key),
        )

    def parse_refund(self, raw: Raw) -> NormalizedRefund:
        root = Node.load(raw)
        event = root
        if root.has("payload"):
            events = root.obj("payload").obj("FinancialEvents").objs("RefundEventList")
            if len(events) != 1:
                raise AdapterError(
                    "payload.FinancialEvents.RefundEventList",
                    f"holds {len(events)} refunds; store one per payload",
                )
            event = events[0]
        order_id = event.ident("AmazonOrderId")
        posted = event.iso_time("PostedDate")
        refunded, line_ids = v.ZERO, []
        for item in event.objs("ShipmentItemAdjustmentList"):
            for charge in item.objs("ItemChargeAdjustmentList", required=False):
                refunded -= charge.obj("ChargeAmount").money("CurrencyAmount", signed=True)
            for promo in item.objs("PromotionAdjustmentList", required=False):
                refunded -= promo.obj("PromotionAmount").money("CurrencyAmount", signed=True)
            line_ids.append(item.text("OrderItemId"))
        if refunded < 0:
            raise event.error(
                "ShipmentItemAdjustmentList", f"adds up to a charge of {-refunded}, not a refund"
            )
        return NormalizedRefund(
            external_id=order_id,
            external_refund_id=f"{order_id}@{event.text('PostedDate')}",
            line_ids=tuple(line_ids) if all(line_ids) else (),  # OrderItemId is optional in ShipmentItem
            amount=refunded,
            reason=None,
            refunded_at=posted,
        )

    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]:
        if not listing.external_sku_id:
            raise AdapterError(
                "listing.external_sku_id", "Amazon listings are keyed by seller SKU: it is required"
            )
        return {
            "productType": "PRODUCT",
            "patches": [
                {
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": check_quantity(quantity)}],
                }
            ],
        }


def _fulfillment_channel(o: Node) -> str:
    """AFN (Amazon ships it) or MFN (the seller does; also when absent, as in some Pending orders)."""
    channel = o.text("FulfillmentChannel") or "MFN"
    if channel not in ("AFN", "MFN"):
        raise o.error("FulfillmentChannel", f"{shown(channel)} is not AFN or MFN")
    return channel


def _address(a: Node | None) -> Address:
    if a is None:
        return Address()
    street = " ".join(
        p for p in (a.text("AddressLine1"), a.text("AddressLine2"), a.text("AddressLine3")) if p
    )
    return Address(
        name=a.text("Name"),
        phone=v.phone(a.text("Phone")),
        country=a.text("CountryCode"),
        province=a.text("StateOrRegion"),
        city=a.text("City"),
        district=a.text("District") or a.text("County"),
        street=street or None,
        postcode=a.text("PostalCode"),
    )


ADAPTERS = (AmazonAdapter(),)
