"""Addresses located at district level (else city, else province) from China's administrative
divisions, as the platforms send them; the level used is stored with the routing decision and ends its
explanation; nearest-store choice and the O2O store radius measure from the district."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from app.channels.adapters import get_adapter
from app.db import get_db, tenant_session
from app.inventory.models import LocationKind
from app.orders import doors
from app.orders.models import Order
from app.routing import divisions, geo
from tests.factories import tenant_ref
from tests.routing_support import FIXTURE, decisions, drain, gid, make_shop, order_body, warehouse

# ---- addresses as the platforms send them ---------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "code", "name"),
    [
        ("taobao", "330106", "浙江省 杭州市 西湖区"),  # receiver_state/_city/_district
        (
            "jd",
            "310115",
            "上海市 浦东新区",
        ),  # 上海, district as city, town as county
        ("douyin", "440305", "广东省 深圳市 南山区"),  # post_addr province/city/town
        ("generic", "510107", "四川省 成都市 武侯区"),
    ],
)
def test_the_platform_sample_orders_are_located_at_district_level(platform, code, name):
    if platform == "generic":
        address = json.loads(FIXTURE.read_text())["shipping_address"]
    else:
        sample = (FIXTURE.parents[1] / platform / "order.json").read_bytes()
        address = asdict(get_adapter(platform).parse_order(sample).address)
    place = geo.locate_address(address)
    assert (place.matched, place.code, place.name, place.missed) == ("district", code, name, "")


@pytest.mark.parametrize(
    ("province", "city", "district", "expected"),
    [
        ("北京", "北京市", "朝阳区", ("district", "110105", "北京市 朝阳区")),  # not Changchun's 朝阳区
        ("北京市", "市辖区", "海淀区", ("district", "110108", "北京市 海淀区")),
        (None, "北京市", "东城区", ("district", "110101", "北京市 东城区")),
        ("浙江", "杭州", "西湖", ("district", "330106", "浙江省 杭州市 西湖区")),  # no suffixes
        ("江西省", "南昌市", "西湖区", ("district", "360103", "江西省 南昌市 西湖区")),
        ("浙江省", "金华市", "义乌市", ("district", "330782", "浙江省 金华市 义乌市")),  # 县级市
        ("湖北省", "仙桃市", None, ("district", "429004", "湖北省 仙桃市")),  # 省直辖县级市 as the city
        ("湖北省", "省直辖县级行政区划", "仙桃市", ("district", "429004", "湖北省 仙桃市")),
        (
            "新疆维吾尔自治区",
            "昌吉回族自治州",
            "昌吉市",
            ("district", "652301", "新疆维吾尔自治区 昌吉回族自治州 昌吉市"),
        ),
        ("广西壮族自治区", "南宁市", "青秀区", ("district", "450103", "广西壮族自治区 南宁市 青秀区")),
        ("广东省", "东莞市", None, ("city", "441900", "广东省 东莞市")),  # no districts under it
        (None, "杭州市", None, ("city", "330100", "浙江省 杭州市")),
        ("Zhejiang", "Hangzhou", None, ("city", "330100", "浙江省 杭州市")),  # English, as Shopify sends it
        ("Sichuan Sheng", "chengdu shi", "武侯区", ("district", "510107", "四川省 成都市 武侯区")),
        ("广西壮族自治区", None, None, ("province", "450000", "广西壮族自治区")),
        ("新疆", None, None, ("province", "650000", "新疆维吾尔自治区")),
    ],
)
def test_address_shapes_are_located_at_the_deepest_known_level(province, city, district, expected):
    place = geo.locate_address({"province": province, "city": city, "district": district})
    assert (place.matched, place.code, place.name) == expected
    assert place.missed == ""


def test_an_unknown_district_falls_back_to_the_city_and_an_unknown_city_to_the_province():
    town = geo.locate_address({"province": "广东省", "city": "东莞市", "district": "东城街道"})
    assert (town.matched, town.name, town.missed) == ("city", "广东省 东莞市", "district '东城街道'")
    elsewhere = geo.locate_address({"province": "浙江省", "city": "杭州市", "district": "朝阳区"})
    assert (elsewhere.matched, elsewhere.code) == ("city", "330100")  # Beijing's, not Hangzhou's
    no_city = geo.locate_address({"province": "浙江省", "city": "火星市"})
    assert (no_city.matched, no_city.code, no_city.missed) == ("province", "330000", "city '火星市'")
    hangzhou = divisions.find("浙江省", "杭州市", None).division
    assert (no_city.lat, no_city.lng) != (hangzhou.lat, hangzhou.lng)


def test_a_district_name_found_in_two_cities_is_not_guessed():
    assert geo.locate_address({"district": "西湖区"}) is None  # Hangzhou's or Nanchang's
    assert geo.locate_address({"city": "Atlantis", "province": "Mu"}) is None
    assert geo.locate_address({"city": 42, "province": None}) is None
    assert geo.locate_address({"province": "Mu", "city": "Atlantis", "district": "武侯区"}) is None
    assert geo.locate_address({"district": "武侯区"}).code == "510107"  # unique in China


def test_the_level_reads_as_one_sentence():
    place = geo.locate_address({"province": "广东省", "city": "东莞市", "district": "东城街道"})
    assert place.describe() == (
        "Distances measured from 广东省 东莞市: address located at city level; district '东城街道' not found."
    )
    assert place.to_dict()["matched"] == "city" and place.to_dict()["code"] == "441900"


# ---- routing: nearest store and O2O radius by district --------------------------------------------

# Two stores in Hangzhou, each about 1 km from its district's point: West Lake (西湖区) and Xiaoshan
# (萧山区, some 15 km away). Hangzhou's city point is 3 km from West Lake, 14 km from Xiaoshan.
WEST_LAKE = (30.265, 120.125)
XIAOSHAN = (30.176, 120.270)


async def _ingest(
    shop, external_id: str, district: str | None, city: str = "杭州市", province: str = "浙江省"
):
    body = json.loads(order_body(external_id, city=city, province=province))
    body["shipping_address"]["district"] = district
    result = await doors.receive_channel_payload(
        get_db(), doors.ChannelRef(shop.ref, shop.channel_id), json.dumps(body, ensure_ascii=False).encode()
    )
    assert result.ok and result.order_status == "reserved", result
    return result.order_id


async def _same_day(ref, order_id: int) -> None:
    async with tenant_session(ref) as session:
        order = await session.get(Order, order_id)
        order.extra = {**(order.extra or {}), "fulfilment_type": "same_day"}


async def _hangzhou_stores(tenant):
    ref = await tenant_ref(tenant.slug)
    stores = {
        name: await warehouse(ref, name, at, kind=LocationKind.store, capabilities=("ship", "same_day"))
        for name, at in (("West Lake store", WEST_LAKE), ("Xiaoshan store", XIAOSHAN))
    }
    shop = await make_shop(ref, dict.fromkeys(stores.values(), 5))
    return ref, stores, shop


ROUTING_PLACE = """query($id: ID!) { orderRouting(orderId: $id) {
  decisions { addressLevel addressDivision } } }"""


async def test_the_nearest_store_is_chosen_by_the_district_of_the_address(gql, tenant_a, run_jobs):
    ref, stores, shop = await _hangzhou_stores(tenant_a)
    xiaoshan_order = await _ingest(shop, "GEO-XS-1", "萧山区")
    west_lake_order = await _ingest(shop, "GEO-WL-1", "西湖区")
    await drain(run_jobs)

    [xs] = await decisions(ref, xiaoshan_order)
    assert xs.status == "routed"
    assert [s["location_id"] for s in xs.decision["shipments"]] == [stores["Xiaoshan store"]]
    assert xs.inputs["place"]["matched"] == "district" and xs.inputs["place"]["code"] == "330109"
    assert "Distances measured from 浙江省 杭州市 萧山区: address located at district level." in (
        xs.explanation.splitlines()
    )
    data = await gql(ROUTING_PLACE, {"id": gid("Order", ref, xiaoshan_order)}, api_key=tenant_a.api_key)
    [shown] = data["orderRouting"]["decisions"]
    assert shown == {"addressLevel": "district", "addressDivision": "浙江省 杭州市 萧山区"}
    [wl] = await decisions(ref, west_lake_order)
    assert [s["location_id"] for s in wl.decision["shipments"]] == [stores["West Lake store"]]


async def test_the_o2o_store_radius_includes_and_excludes_stores_by_district(tenant_a, run_jobs):
    ref, stores, shop = await _hangzhou_stores(tenant_a)
    order_id = await _ingest(shop, "GEO-O2O-1", "萧山区")
    await _same_day(ref, order_id)
    await drain(run_jobs)

    [d] = await decisions(ref, order_id)
    assert d.status == "routed"
    assert [s["location_id"] for s in d.decision["shipments"]] == [stores["Xiaoshan store"]]
    [excluded] = [c for c in d.decision["candidates"] if c["location_id"] == stores["West Lake store"]]
    assert excluded["excluded_by"] == "store_radius"
    assert "beyond the 3 km store radius (same_day order)" in excluded["reason"]


async def test_a_city_level_address_says_so_in_the_decision(tenant_a, run_jobs):
    ref, _, shop = await _hangzhou_stores(tenant_a)
    order_id = await _ingest(shop, "GEO-CITY-1", "文新街道")  # a street office, not a district
    await drain(run_jobs)
    [d] = await decisions(ref, order_id)
    assert d.inputs["place"]["matched"] == "city" and d.inputs["place"]["missed"] == "district '文新街道'"
    assert (
        "Distances measured from 浙江省 杭州市: address located at city level; district '文新街道' not found."
        in d.explanation.splitlines()
    )
