"""Location connectors: the signed JSON a location's system receives, and the callbacks it sends back.

**Out** (``release_fulfilment``): ``POST <connector url>`` with ``Content-Type: application/json`` and
``X-OMS-Signature: sha256=<hex HMAC-SHA256(connector secret, raw body)>``::

    {"event": "fulfillment_order.released", "delivery_id": 17,
     "fulfillment_order": {"id": "<global id>", "group": "all", "carrier": "SF", "accept_by": null},
     "order": {"id": "<global id>", "number": "SO00000042", "placed_at": "...", "buyer_note": "..."},
     "location": {"id": "<global id>", "code": "WH-SH"},
     "lines": [{"material_code": "SCARF-RED", "material_name": "...", "quantity": 2}],
     "address": {"name": "...", "phone": "...", "province": "...", "city": "...", "street": "..."},
     "callback_path": "/webhooks/fulfilment/<location global id>"}

Any 2xx is success; anything else, or no answer within ``TIMEOUT_S``, is retried with ``BACKOFF``.
Redirects are not followed, and the URL must lead to a public address (``app.outbound``); the
delivery keeps the status and a short reason, never the answer's body.

**In** (``POST /webhooks/fulfilment/<location global id>``), signed the same way with the same secret
(``X-OMS-Timestamp`` optional, as for channels)::

    {"event": "accepted" | "picked" | "packed" | "shipped" | "delivered" | "rejected"
              | "ready_for_pickup" | "in_transit",
     "fulfillment_order_id": "<global id from the release>",
     "carrier": "SF", "tracking_number": "SF123", "parcels": [...],   # shipped
     "reason": "out of stock", "adjust_stock": true,                  # rejected
     "scanned_at": "2026-11-23T10:00:00+08:00"}                       # in_transit (optional)

``ready_for_pickup`` (pick-up orders): the goods wait at the counter, the hold starts (``pickups``);
``delivered`` then means collected. ``in_transit``: a carrier scan of the shipped parcel (``sla``).

A rejection lowers the location's on hand by the rejected units unless ``adjust_stock`` is false (the
stock is there but cannot be shipped, e.g. the store is short of staff).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay

from app import outbound
from app.channels.adapters._payload import loads as load_json
from app.channels.normalized import AdapterError, check_text
from app.errors import NotFound, UserError
from app.fulfillment.models import LocationConnector, new_connector_secret
from app.inventory.models import Location
from app.signing import SIGNATURE_HEADER, sign

TIMEOUT_S = 10.0
RELEASE_EVENT = "fulfillment_order.released"
MAX_ATTEMPTS = 8
# Delay before attempt n+1 after attempt n failed (n = 1..7).
BACKOFF = tuple(timedelta(minutes=m) for m in (1, 5, 30, 120, 360, 720, 1440))
CALLBACK_EVENTS = (
    "accepted",
    "picked",
    "packed",
    "shipped",
    "delivered",
    "rejected",
    "ready_for_pickup",
    "in_transit",
)
MAX_URL = 500


def global_id(type_name: str, tenant_id: int, row_id: int) -> str:
    """The id GraphQL shows for a tenant row (``Type:<tenant>.<row>``, base64)."""
    return relay.to_base64(type_name, f"{tenant_id}.{row_id}")


def parse_global_id(gid: Any, type_name: str) -> tuple[int, int] | None:
    """(tenant id, row id) from a global id of ``type_name``, or None."""
    if not isinstance(gid, str) or len(gid) > 200:
        return None
    try:
        parsed = relay.GlobalID.from_id(gid)
    except Exception:
        return None
    tenant, _, row = parsed.node_id.partition(".")
    ok = parsed.type_name == type_name and all(
        part.isascii() and part.isdigit() and 0 < len(part) <= 18 for part in (tenant, row)
    )
    return (int(tenant), int(row)) if ok else None


# ---- connectors ------------------------------------------------------------------------------------


async def check_url(url: Any) -> str:
    """The URL, stripped, if the worker may post to it (``app.outbound``): ``INVALID_URL`` for what is
    not an http(s) URL, ``URL_NOT_ALLOWED`` for one that leads inside (loopback, private, metadata...),
    another scheme, credentials or an unexpected port. A host name that does not resolve yet passes:
    every delivery vets it again."""
    url = url.strip() if isinstance(url, str) else ""
    if len(url) > MAX_URL:
        raise UserError("INVALID_URL", f"give an http(s) URL of at most {MAX_URL} characters", "url")
    reason = await outbound.check_url(url, allow_unresolved=True)
    if reason == outbound.NOT_A_URL:
        raise UserError("INVALID_URL", f"give an http(s) URL of at most {MAX_URL} characters", "url")
    if reason is not None:
        raise UserError("URL_NOT_ALLOWED", f"this URL may not receive fulfilment orders: {reason}", "url")
    return url


async def set_connector(
    session: AsyncSession, location_id: int, url: str, *, active: bool = True, rotate_secret: bool = False
) -> tuple[LocationConnector, str | None]:
    """Create or change a location's connector. Returns it and its secret when one was just made (a new
    connector, or ``rotate_secret``): the only time the secret is shown."""
    url = await check_url(url)
    if await session.get(Location, location_id) is None:
        raise NotFound("location", "locationId")
    connector = await session.get(LocationConnector, location_id, with_for_update=True)
    secret = None
    if connector is None:
        secret = new_connector_secret()
        connector = LocationConnector(location_id=location_id, url=url, secret=secret, active=active)
        session.add(connector)
    else:
        connector.url, connector.active = url, active
        if rotate_secret:
            connector.secret = secret = new_connector_secret()
    await session.flush()
    return connector, secret


# ---- out -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None  # short and ours ("HTTP 503", "timeout"...): never the remote's body


async def post(url: str, secret: str, body: bytes) -> Attempt:
    """One signed POST through ``app.outbound``. Never raises: failures come back as an ``Attempt``."""
    headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
    outcome = await outbound.post(url, content=body, headers=headers, timeout_s=TIMEOUT_S)
    return Attempt(outcome.ok, outcome.status_code, outcome.error)


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


# ---- in --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    event: str
    fulfillment_order_id: int
    carrier: str | None = None
    tracking_number: str | None = None
    parcels: list[Any] = field(default_factory=list)
    reason: str | None = None
    adjust_stock: bool = True
    scanned_at: datetime | None = None


def _text(data: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > limit:
        raise UserError("INVALID_PAYLOAD", f"{key} must be text of at most {limit} characters", key)
    _no_control_characters(str(value), key)
    return str(value).strip() or None


def _no_control_characters(value: Any, key: str) -> None:
    """Refuse control characters in every string of a JSON value (PostgreSQL refuses NUL in text and
    jsonb alike), walked without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str):
            try:
                check_text(key, item, len(item))
            except AdapterError as exc:
                raise UserError("INVALID_PAYLOAD", str(exc), key) from None


def parse_callback(body: bytes, tenant_id: int) -> Callback:
    """A callback body, checked. A fulfilment order id of another tenant is simply not found."""
    try:
        data = load_json(body.decode("utf-8"), "the body", parse_float=float)
    except UnicodeDecodeError:
        raise UserError("INVALID_PAYLOAD", "the body is not JSON") from None
    except AdapterError as exc:  # not JSON, or nested too deep
        raise UserError("INVALID_PAYLOAD", exc.message) from None
    if not isinstance(data, dict):
        raise UserError("INVALID_PAYLOAD", "the body must be a JSON object")
    event = data.get("event")
    if event not in CALLBACK_EVENTS:
        raise UserError("INVALID_PAYLOAD", f"event must be one of {', '.join(CALLBACK_EVENTS)}", "event")
    ids = parse_global_id(data.get("fulfillment_order_id"), "FulfillmentOrder")
    if ids is None or ids[0] != tenant_id:
        raise NotFound("fulfillment order", "fulfillment_order_id")
    parcels = data.get("parcels") or []
    if not isinstance(parcels, list) or len(parcels) > 100:
        raise UserError("INVALID_PAYLOAD", "parcels must be a list of at most 100", "parcels")
    _no_control_characters(parcels, "parcels")
    adjust = data.get("adjust_stock", True)
    if not isinstance(adjust, bool):
        raise UserError("INVALID_PAYLOAD", "adjust_stock must be true or false", "adjust_stock")
    scanned_at = data.get("scanned_at")
    if scanned_at is not None:
        scanned_at = _timestamp(scanned_at, "scanned_at")
    return Callback(
        event=event,
        fulfillment_order_id=ids[1],
        carrier=_text(data, "carrier", 60),
        tracking_number=_text(data, "tracking_number", 100),
        parcels=parcels,
        reason=_text(data, "reason", 500),
        adjust_stock=adjust,
        scanned_at=scanned_at,
    )


def _timestamp(value: Any, key: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise UserError("INVALID_PAYLOAD", f"{key} must be an ISO 8601 time", key)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
