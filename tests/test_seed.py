"""`oms seed`: the demo tenant with realistic data, created once however often it runs."""

from __future__ import annotations

import contextlib
from collections import Counter

from sqlalchemy import func, select

from app import seed_data
from app.catalog.models import ChannelListing, Material, Product, ProductKind
from app.channels.models import Channel
from app.errors import NotFound
from app.inbox import InboxMessage
from app.inventory.ledger import check_ledger
from app.inventory.models import Location, StockAlert, StockLevel, StockMovement
from app.orders.models import Order, OrderHold, OrderStatus
from app.seed import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG, seed_demo
from tenants import service as tenants
from tenants.models import Tenant

LOGIN = """mutation($input: LoginInput!) {
  login(input: $input) { accessToken userErrors { field message code } } }"""
ORDERS = "{ orders(first: 5) { edges { node { id number status } } } }"


async def _fresh(db) -> None:
    """Another test (or an earlier run) may have left a demo tenant in the shared test database."""
    with contextlib.suppress(NotFound):
        await tenants.drop_tenant(db, DEMO_SLUG)


async def _snapshot(session, tenant_id: int) -> dict:
    models = (Channel, Location, Material, Product, ChannelListing, Order, OrderHold, StockMovement)
    counts = {m.__tablename__: await session.scalar(select(func.count()).select_from(m)) for m in models}
    counts["inbox"] = await session.scalar(
        select(func.count()).where(InboxMessage.tenant_id == tenant_id)  # nothing sent again
    )
    return counts


async def test_seed_twice_is_one_demo_tenant_with_data(db, gql):
    await _fresh(db)
    first = await seed_demo(db)
    assert f"created demo tenant 'demo': {DEMO_EMAIL} / {DEMO_PASSWORD}" in first
    assert "seeded 5 channels, 8 locations, 15 materials, 18 products" in first

    async with db.control_session() as session:
        tenant = await tenants.get_tenant(session, DEMO_SLUG)
    ref = tenants.tenant_ref(tenant)
    async with db.tenant_session(ref) as session:
        before = await _snapshot(session, ref.id)

    second = await seed_demo(db)
    assert "already exists" in second and "demo data present:" in second
    async with db.control_session() as session:
        assert await session.scalar(select(func.count()).where(Tenant.slug == DEMO_SLUG)) == 1

    async with db.tenant_session(ref) as session:
        assert await _snapshot(session, ref.id) == before  # the second run changed nothing
        platforms = set((await session.scalars(select(Channel.platform))).all())
        assert platforms == {"tmall", "jd", "web", "mini_program", "pos"}
        jd = await session.scalar(select(Channel).where(Channel.platform == "jd"))
        assert jd.default_carrier == "SF"
        locations = (await session.scalars(select(Location))).all()
        stores = [x for x in locations if x.kind.value == "store"]
        assert len(locations) == 8 and len(stores) == 4
        assert all(set(x.capabilities) == {"ship", "pickup", "same_day"} for x in stores)
        shanghai = next(x for x in locations if x.code == "SH-DC")
        assert (shanghai.lat, shanghai.lng) == (31.2304, 121.4737)  # from the cities CSV
        kinds = Counter((await session.scalars(select(Product.kind))).all())
        assert kinds[ProductKind.single] == 14
        assert all(kinds[k] == 1 for k in ("bundle", "gift", "virtual", "service"))
        gift_listed = await session.scalar(
            select(func.count())
            .select_from(ChannelListing)
            .join(Product, Product.id == ChannelListing.product_id)
            .where(Product.kind == ProductKind.gift)
        )
        assert gift_listed == 0
        statuses = Counter((await session.scalars(select(Order.status))).all())
        assert sum(statuses.values()) == len(seed_data.ORDERS)
        assert statuses[OrderStatus.reserved] >= 10
        assert statuses[OrderStatus.on_hold] == 2
        assert statuses[OrderStatus.awaiting_stock] == 1
        assert statuses[OrderStatus.cancelled] == 1
        assert statuses[OrderStatus.received] == 1  # awaiting payment
        holds = set((await session.scalars(select(OrderHold.code))).all())
        assert holds == {"duplicate", "address_incomplete"}
        assert await session.scalar(select(func.count()).select_from(StockAlert)) >= 2
        safety = await session.scalar(select(func.count()).where(StockLevel.safety_stock > 0))
        assert safety == len(seed_data.SAFETY)
        assert await check_ledger(session) == []

    login = (await gql(LOGIN, {"input": {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}}))["login"]
    assert login["userErrors"] == [] and login["accessToken"]
    edges = (await gql(ORDERS, token=login["accessToken"]))["orders"]["edges"]
    assert len(edges) == 5
    assert all(e["node"]["number"].startswith("SO") for e in edges)


async def test_seed_after_the_demo_tenant_was_dropped(db, gql):
    """`oms tenant drop demo` keeps the demo user (users outlive tenants): seeding again provisions a
    new demo tenant for that user, with its data, and the printed login still works."""
    await _fresh(db)
    await seed_demo(db)
    await tenants.drop_tenant(db, DEMO_SLUG)
    message = await seed_demo(db)
    assert message.startswith("created demo tenant") and "seeded 5 channels" in message
    login = (await gql(LOGIN, {"input": {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}}))["login"]
    assert login["userErrors"] == []
    edges = (await gql(ORDERS, token=login["accessToken"]))["orders"]["edges"]
    assert len(edges) == 5


def test_locations_fall_back_to_the_same_coordinates_without_the_cities_csv(monkeypatch):
    from app import seed

    from_csv = seed.load_cities()
    assert all(from_csv[city] == point for city, point in seed_data.FALLBACK_CITIES.items())
    assert {site.city for site in seed_data.SITES} <= set(seed_data.FALLBACK_CITIES)
    monkeypatch.setattr(seed, "CITIES_CSV", ())
    assert seed.load_cities() == seed_data.FALLBACK_CITIES
