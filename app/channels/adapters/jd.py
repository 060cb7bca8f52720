"""JD (京东) POP / SOP orders through the JOS API, JSON format.

Orders: the ``jingdong.pop.order.get`` response
``{"jingdong_pop_order_get_responce": {"orderDetailInfo": {"apiResult": {...}, "orderInfo": OrderInfo}}}``
(JD spells it "responce"), or a ``jingdong.pop.order.search`` response
``{"jingdong_pop_order_search_responce": {"searchorderinfo_result": {"orderInfoList": [one order]}}}``.
A JOS ``{"error_response": {code, zh_desc, en_desc}}`` or ``apiResult.success = false`` is reported as such.

OrderInfo fields used: ``orderId``, ``orderState`` (WAIT_SELLER_STOCK_OUT, WAIT_SELLER_DELIVERY,
WAIT_SEND_CODE, PAUSE, POP_ORDER_PAUSE, LOCKED, WAIT_GOODS_RECEIVE_CONFIRM, FINISHED_L, TRADE_CANCELED),
``orderStateRemark``, ``orderTotalPrice`` (goods at JD price), ``sellerDiscount`` (the seller's discount,
order level), ``freightPrice``, ``orderPayment`` (what the buyer paid; platform-funded coupons make it
lower than the order's value), ``orderStartTime`` / ``paymentConfirmTime`` / ``modified`` /
``orderEndTime`` (``yyyy-MM-dd HH:mm:ss``, Asia/Shanghai), ``pin``, ``orderRemark`` (buyer),
``venderRemark`` (seller), ``invoiceEasyInfo`` (``invoiceTitle``, ``invoiceType``, ``invoiceCode`` = tax
id), ``storeId`` (non-zero: JD's own warehouse ships it, kept in ``extra``), ``consigneeInfo`` (``fullname``,
``mobile``, ``telephone``, ``province``, ``city``, ``county``, ``town``, ``fullAddress``) and
``itemInfoList[]`` (``skuId``, ``wareId``, ``skuName``, ``jdPrice`` (unit), ``itemTotal`` (quantity),
``outerSkuId``). Amounts are decimal strings in yuan.

JD items carry no line id: the line id is the ``skuId`` (unique within an order). ``sellerDiscount`` is
given for the whole order and is allocated here in proportion to each line's amount.
Cancellations: an order payload in TRADE_CANCELED. Stock: ``jingdong.stock.write.updateSkuStock``.
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
    Invoice,
    NormalizedCancel,
    NormalizedOrder,
    NormalizedRefund,
)

STATUS = {
    "WAIT_SELLER_STOCK_OUT": "paid",
    "WAIT_SELLER_DELIVERY": "paid",
    "WAIT_SEND_CODE": "paid",
    "PAUSE": "paid",
    "POP_ORDER_PAUSE": "paid",
    "LOCKED": "paid",
    "WAIT_GOODS_RECEIVE_CONFIRM": "shipped",
    "FINISHED_L": "completed",
    "TRADE_CANCELED": "cancelled",
}


def _order_info(raw: Raw) -> Node:
    root = Node.load(raw)
    if root.has("error_response"):
        e = root.obj("error_response")
        raise AdapterError(
            "error_response", f"JOS error {e.text('code')}: {e.text('zh_desc') or e.text('en_desc')}"
        )
    if root.has("jingdong_pop_order_search_responce"):
        result = root.obj("jingdong_pop_order_search_responce").obj("searchorderinfo_result")
        _check_api_result(result)
        orders = result.objs("orderInfoList")
        if len(orders) != 1:
            raise result.error("orderInfoList", f"holds {len(orders)} orders; store one order per payload")
        return orders[0]
    detail = root.obj("jingdong_pop_order_get_responce").obj("orderDetailInfo")
    _check_api_result(detail)
    return detail.obj("orderInfo")


def _check_api_result(node: Node) -> None:
    result = node.opt_obj("apiResult")
    if result is not None and not result.flag("success", default=True):
        message = result.text("chineseErrCode") or result.text("englishErrCode") or "failed"
        raise result.error("success", f"JOS call failed: {message}")


def _street(c: Node) -> str | None:
    full = c.text("fullAddress")
    if not full:
        return None
    for part in (c.text("province"), c.text("city"), c.text("county"), c.text("town")):
        if part and full.startswith(part):
            full = full[len(part) :]
    return full.strip() or None


class JdAdapter(ChannelAdapter):
    platform = "jd"
    inventory_api = "jingdong.stock.write.updateSkuStock"

    def parse_order(self, raw: Raw) -> NormalizedOrder:
        o = _order_info(raw)
        raw_status = o.ident("orderState")
        status = v.map_status(raw_status, STATUS, o.at("orderState"))
        drafts, seen = [], set()
        for item in o.objs("itemInfoList"):
            sku = item.ident("skuId")
            line_id = sku if sku not in seen else f"{sku}#{len(seen) + 1}"
            seen.add(line_id)
            quantity = item.quantity("itemTotal")
            price = item.money("jdPrice")
            drafts.append(
                LineDraft(
                    line_id=line_id,
                    item_id=item.ident("wareId"),
                    sku_id=sku,
                    title=item.text("skuName", MAX_TITLE) or "",
                    quantity=quantity,
                    unit_price=price,
                    gross=price * quantity,
                    path=item.path,
                )
            )
        subtotal = sum_money(d.gross for d in drafts)
        total_price = o.money("orderTotalPrice", subtotal)
        if total_price != subtotal:
            raise o.error(
                "orderTotalPrice", f"{total_price} differs from the items' jdPrice x itemTotal {subtotal}"
            )
        lines = build_lines(drafts, o.money("sellerDiscount", v.ZERO), o.at("sellerDiscount"))
        discount = sum_money(line.discount for line in lines)
        shipping = o.money("freightPrice", v.ZERO)
        paid_at = o.local_time("paymentConfirmTime", required=False)
        consignee = o.obj("consigneeInfo")
        invoice = o.opt_obj("invoiceEasyInfo")
        store = o.text("storeId")
        return NormalizedOrder(
            external_id=o.ident("orderId"),
            channel_platform=self.platform,
            status=status,
            placed_at=o.local_time("orderStartTime"),
            paid_at=paid_at,
            updated_at=o.local_time("modified", required=False) or o.local_time("orderStartTime"),
            currency="CNY",
            business_model="b2c",
            buyer=Buyer(
                platform_buyer_id=o.text("open_id_buyer") or o.text("pin"),
                phone=v.phone(consignee.text("mobile")),
                nick=o.text("pin"),
            ),
            address=Address(
                name=consignee.text("fullname"),
                phone=v.phone(consignee.text("mobile") or consignee.text("telephone")),
                country="CN",
                province=consignee.text("province"),
                city=consignee.text("city"),
                district=consignee.text("county"),
                street=" ".join(p for p in (consignee.text("town"), _street(consignee)) if p) or None,
                postcode=None,
            ),
            lines=lines,
            amounts=Amounts(
                subtotal=subtotal,
                shipping=shipping,
                discount=discount,
                tax=v.ZERO,
                total=subtotal - discount + shipping,
                paid=o.money("orderPayment") if paid_at else v.ZERO,
            ),
            buyer_note=o.text("orderRemark"),
            seller_note=o.text("venderRemark"),
            invoice=Invoice(
                title=invoice.text("invoiceTitle") or "",
                tax_id=invoice.text("invoiceCode"),
                type=invoice.text("invoiceType"),
            )
            if invoice is not None and invoice.has("invoiceTitle")
            else None,
            raw_status=raw_status,
            extra=(("jd_store_id", store),) if store and store != "0" else (),
        )

    def parse_cancel(self, raw: Raw) -> NormalizedCancel:
        o = _order_info(raw)
        if o.text("orderState") != "TRADE_CANCELED":
            raise o.error("orderState", f"is {o.text('orderState')}, not TRADE_CANCELED")
        return NormalizedCancel(
            external_id=o.ident("orderId"),
            reason=o.text("orderStateRemark"),
            cancelled_at=o.local_time("orderEndTime", required=False) or o.local_time("modified"),
        )

    def parse_refund(self, raw: Raw) -> NormalizedRefund:
        raise AdapterError(
            "$",
            "JD refunds (jingdong.pop.afs.soa.refundapply.*) are not normalised yet: "
            "their status codes could not be confirmed from documentation",
        )

    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]:
        if not listing.external_sku_id.isdigit():
            raise AdapterError(
                "listing.external_sku_id", f"{listing.external_sku_id!r} is not a numeric JD skuId"
            )
        body: dict[str, Any] = {"skuId": int(listing.external_sku_id), "stockNum": check_quantity(quantity)}
        if listing.external_location_id:
            body["storeId"] = int(listing.external_location_id)
        return body


ADAPTERS = (JdAdapter(),)
