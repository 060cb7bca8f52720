"""Helpers for routing and fulfilment tests: a shop with stocked products, orders through the channel
door, a real HTTP server standing in for a location's WMS, signed callbacks, and readers for what the
worker wrote. The ``connector_server`` fixture lives in conftest.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select, update
from strawberry import relay

from app.db import TenantRef, get_db, tenant_session
from app.fulfillment.models import FulfillmentOrder, FulfillmentStatus
from app.inventory import ledger
from app.inventory import service as inventory
from app.inventory.models import LocationKind, StockLevel
from app.orders import doors
from app.orders.models import Order, OrderEvent
from app.outbox import OutboxMessage
from app.routing.models import RoutingDecision
from tests.factories import make_channel, make_location, make_sellable, tenant_ref

FIXTURE = Path(__file__).parent / "fixtures" / "channels" / "generic" / "order.json"
CHENGDU = (30.5728, 104.0668)
SHANGHAI = (31.2304, 121.4737)
ERRORS = "userErrors { field message code }"


@dataclass
class ConnectorServer:
    """A tiny real HTTP server standing in for a location's WMS: records every request it gets."""

    status: int = 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answer_headers: dict[str, str] = field(default_factory=dict)  # e.g. a redirect's Location
    answer_body: bytes | None = None  # None: "ok", or "down for maintenance" for a failing status
    server: ThreadingHTTPServer | None = None

    def start(self) -> ConnectorServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                for name, value in outer.answer_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                body = outer.answer_body
                if body is None:
                    body = b"ok" if outer.status < 300 else b"down for maintenance"
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/fulfilment"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def gid(type_name: str, ref: TenantRef, row_id: int) -> str:
    return relay.to_base64(type_name, f"{ref.id}.{row_id}")


def sign(secret: str, body: bytes) -> dict[str, str]:
    """The documented scheme, computed here independently of the server code."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "X-OMS-Signature": f"sha256={digest}"}


@dataclass
class Shop:
    """A tenant with a web channel and the three products of the generic fixture order."""

    ref: TenantRef
    channel_id: int
    materials: dict[str, int]  # material id by the fixture's SKU


async def make_shop(ref: TenantRef, locations: dict[int, int]) -> Shop:
    """``locations``: location id -> units of every product stocked there."""
    channel = await make_channel(ref, "web")
    first, *others = locations.items()
    materials = {}
    for item, sku, kind in (
        ("SPU-1001", "SKU-1001-RED-M", "single"),
        ("", "SKU-2002", "single"),
        ("", "GIFT-BAG", "single"),
    ):
        s = await make_sellable(
            ref,
            channel.id,
            stock=first[1],
            location_id=first[0],
            kind=kind,
            item_id=item or f"i-{sku}",
            sku_id=sku,
        )
        materials[sku] = s.material_id
        async with tenant_session(ref) as session:
            for location_id, units in others:
                if units:
                    await inventory.receive(session, location_id, s.material_id, units, reason="test stock")
    return Shop(ref, channel.id, materials)


async def warehouse(ref: TenantRef, name: str, at: tuple[float, float] | None, **values) -> int:
    lat, lng = at if at else (None, None)
    return await make_location(
        ref, code=f"{name}-{secrets.token_hex(2)}", name=name, lat=lat, lng=lng, **values
    )


def order_body(external_id: str, *, city: str = "成都市", province: str = "四川省") -> bytes:
    """The generic fixture order under another id, buyer and street (so audit rules stay quiet)."""
    payload = json.loads(FIXTURE.read_text())
    payload["id"] = external_id
    payload["buyer"] = {
        **payload["buyer"],
        "id": f"u-{external_id}",
        "phone": f"135{secrets.randbelow(10**8):08d}",
    }
    payload["shipping_address"] = {
        **payload["shipping_address"],
        "city": city,
        "province": province,
        "street": f"天府大道北段 {external_id} 号",
        "phone": payload["buyer"]["phone"],
    }
    return json.dumps(payload, ensure_ascii=False).encode()


async def ingest(shop: Shop, external_id: str, **address) -> int:
    """Through the channel door: stored in the inbox, parsed by the generic adapter, ingested."""
    result = await doors.receive_channel_payload(
        get_db(), doors.ChannelRef(shop.ref, shop.channel_id), order_body(external_id, **address)
    )
    assert result.ok, result
    assert result.order_status == "reserved", result
    return result.order_id


async def drain(run_jobs, rounds: int = 8) -> None:
    """Run the worker until no outbox row is due and arq's queue is empty: jobs enqueue further jobs,
    and the worker's own relay may hand one over just as the burst worker decides to stop."""
    from app.config import get_settings
    from app.redis import get_redis

    for _ in range(rounds):
        await run_jobs()
        async with get_db().control_session() as session:
            due = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None), OutboxMessage.available_at <= func.now())
            )
        queued = await (await get_redis()).zcard(get_settings().queue_name)
        if not due and not queued:
            return
    raise AssertionError("the outbox did not drain")


async def run_delayed(ref: TenantRef, run_jobs) -> None:
    """Make the tenant's delayed outbox rows (retries a minute or more away) due now, and run them: a
    test leaves no job behind for a later test's worker (and the retries show they change nothing)."""
    async with get_db().control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.tenant_id == ref.id, OutboxMessage.sent_at.is_(None))
            .values(available_at=func.now())
        )
    await drain(run_jobs)


async def order_of(ref: TenantRef, order_id: int) -> Order:
    async with tenant_session(ref) as session:
        return await session.get(Order, order_id)


async def fulfillment_orders(ref: TenantRef, order_id: int) -> list[FulfillmentOrder]:
    async with tenant_session(ref) as session:
        query = (
            select(FulfillmentOrder)
            .where(FulfillmentOrder.order_id == order_id)
            .order_by(FulfillmentOrder.id)
        )
        return list((await session.scalars(query)).all())


async def decisions(ref: TenantRef, order_id: int) -> list[RoutingDecision]:
    async with tenant_session(ref) as session:
        query = (
            select(RoutingDecision).where(RoutingDecision.order_id == order_id).order_by(RoutingDecision.id)
        )
        return list((await session.scalars(query)).all())


async def events(ref: TenantRef, order_id: int) -> list[OrderEvent]:
    async with tenant_session(ref) as session:
        query = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        return list((await session.scalars(query)).all())


async def level(ref: TenantRef, location_id: int, material_id: int) -> StockLevel:
    async with tenant_session(ref) as session:
        return await session.get(StockLevel, (location_id, material_id))


async def assert_ledger(ref: TenantRef) -> None:
    async with tenant_session(ref) as session:
        assert await ledger.check_ledger(session) == []


async def connect(gql, tenant, ref: TenantRef, location_id: int, url: str) -> str:
    """setLocationConnector through GraphQL; returns the secret (shown this once)."""
    data = await gql(
        f"""mutation($input: SetLocationConnectorInput!) {{
          setLocationConnector(input: $input) {{ secret connector {{ url callbackPath }} {ERRORS} }} }}""",
        {"input": {"locationId": gid("Location", ref, location_id), "url": url}},
        api_key=tenant.api_key,
    )
    payload = data["setLocationConnector"]
    assert payload["userErrors"] == [] and payload["secret"].startswith("whsec_")
    return payload["secret"]


async def callback(client, ref: TenantRef, location_id: int, secret: str, fo_id: int, event: str, **extra):
    body = json.dumps(
        {"event": event, "fulfillment_order_id": gid("FulfillmentOrder", ref, fo_id), **extra}
    ).encode()
    return await client.post(
        f"/webhooks/fulfilment/{gid('Location', ref, location_id)}", content=body, headers=sign(secret, body)
    )


ORDER_ROUTING = """query($id: ID!) { orderRouting(orderId: $id) {
  orderStatus decisions { id attempt status explanation carrier
    shipments { locationId name group distanceKm lines { lineId material quantity } }
    candidates { locationId name distanceKm excludedBy reason factors chosen covers }
    unfilled { lineId reason } } } }"""

POLICY = "name mode weights rules maxShipments storeRadiusKm kindBonus factors updatedBy"
UPDATE_POLICY = f"""mutation($input: RoutingPolicyInput!) {{
  updateRoutingPolicy(input: $input) {{ policy {{ {POLICY} }} {ERRORS} }} }}"""


SIMULATE = f"""query($input: SimulateRoutingInput!) {{ simulateRouting(input: $input) {{
  orders {{ orderId orderNumber statusBefore statusAfter locationsBefore locationsAfter changed }}
  totals {{ orders changed shipmentsBefore shipmentsAfter distanceKmBefore distanceKmAfter }}
  {ERRORS} }} }}"""


async def store_order(gql, tenant, run_jobs, server, external_id: str):
    """An order routed to a Chengdu store (connected) with a Shanghai warehouse as the fallback:
    (ref, store, shanghai, shop, connector secret, order id, its fulfilment order)."""
    ref = await tenant_ref(tenant.slug)
    store = await warehouse(ref, "Store Chengdu", CHENGDU, kind=LocationKind.store)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {store: 3, shanghai: 5})
    secret = await connect(gql, tenant, ref, store, server.url)
    order_id = await ingest(shop, external_id)
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.location_id == store and fo.status is FulfillmentStatus.assigned
    return ref, store, shanghai, shop, secret, order_id, fo


async def route_job(ref: TenantRef, order_id: int) -> OutboxMessage:
    """The order's first ``route_order`` outbox message (ingest enqueued it). Order ids are numbered per
    tenant schema, so the tenant is part of the lookup: order 1 exists in every tenant."""
    async with get_db().control_session() as session:
        return await session.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.job == "route_order",
                OutboxMessage.tenant_id == ref.id,
                OutboxMessage.kwargs["order_id"].as_integer() == order_id,
            )
            .order_by(OutboxMessage.id)
            .limit(1)
        )
