"""Where a delivery address (or a location without coordinates) is: city name → latitude/longitude.

Routing needs a point to measure distances from, and orders carry a postal address, not coordinates.
The table is ``data/cn_cities.csv`` (city in English and Chinese, province, region, lat, lng): the
address's city is matched first (``成都市``, ``成都``, ``Chengdu`` and ``chengdu shi`` all match), then
its province, whose point is the mean of that province's cities in the table (a province-level guess
is still far better than none for choosing between warehouses a thousand km apart). No match → None:
the order is not routed (see ``app.routing.service``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "cn_cities.csv"
# local time of the business: "today" for a location's load, carriers' cut-offs
BUSINESS_TZ = "Asia/Shanghai"

PROVINCES_ZH = {
    "北京": "Beijing",
    "天津": "Tianjin",
    "河北": "Hebei",
    "山西": "Shanxi",
    "内蒙古": "Inner Mongolia",
    "辽宁": "Liaoning",
    "吉林": "Jilin",
    "黑龙江": "Heilongjiang",
    "上海": "Shanghai",
    "江苏": "Jiangsu",
    "浙江": "Zhejiang",
    "安徽": "Anhui",
    "福建": "Fujian",
    "江西": "Jiangxi",
    "山东": "Shandong",
    "河南": "Henan",
    "湖北": "Hubei",
    "湖南": "Hunan",
    "广东": "Guangdong",
    "广西": "Guangxi",
    "海南": "Hainan",
    "重庆": "Chongqing",
    "四川": "Sichuan",
    "贵州": "Guizhou",
    "云南": "Yunnan",
    "西藏": "Tibet",
    "陕西": "Shaanxi",
    "甘肃": "Gansu",
    "青海": "Qinghai",
    "宁夏": "Ningxia",
    "新疆": "Xinjiang",
}
# Longest first: "广西壮族自治区" loses "壮族自治区", not just "区".
_ZH_SUFFIXES = (
    "维吾尔自治区",
    "特别行政区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "自治州",
    "地区",
    "省",
    "市",
    "盟",
)
_EN_SUFFIXES = (" city", " shi", " province", " sheng", " autonomous region", " municipality")


@dataclass(frozen=True)
class Place:
    lat: float
    lng: float
    matched: str  # "city" | "province"
    name: str  # the table's name for what matched, e.g. "Chengdu" or "Guangdong"


def _key(name: str) -> str:
    """Lower case, no spaces, apostrophes or dashes, administrative suffixes removed."""
    s = " ".join(name.strip().lower().split())
    for suffix in _EN_SUFFIXES:
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            break
    for suffix in _ZH_SUFFIXES:
        if s.endswith(suffix) and len(s) > len(suffix):
            s = s[: -len(suffix)]
            break
    return "".join(ch for ch in s if ch not in " '\u2019-")


@dataclass(frozen=True)
class _Table:
    cities: Mapping[str, Place]
    provinces: Mapping[str, Place]


@cache
def _table() -> _Table:
    cities: dict[str, Place] = {}
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with DATA.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            lat, lng = float(row["lat"]), float(row["lng"])
            place = Place(lat, lng, "city", row["city"])
            cities.setdefault(_key(row["city"]), place)
            cities.setdefault(_key(row["city_zh"]), place)
            points[row["province"]].append((lat, lng))
    provinces: dict[str, Place] = {}
    for province, pts in points.items():
        mean = Place(
            sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts), "province", province
        )
        provinces[_key(province)] = mean
    for zh, en in PROVINCES_ZH.items():
        if _key(en) in provinces:
            provinces[_key(zh)] = provinces[_key(en)]
    return _Table(cities, provinces)


def locate(city: str | None, province: str | None = None) -> Place | None:
    """The point of ``city``, else of ``province``, else None."""
    table = _table()
    if city and (found := table.cities.get(_key(city))):
        return found
    if province and (found := table.provinces.get(_key(province))):
        return found
    # Municipalities are often written as the province only, or the city names the province.
    if city and (found := table.provinces.get(_key(city))):
        return found
    return None


def locate_address(address: Mapping[str, Any]) -> Place | None:
    """``locate`` for an order's ``address`` JSON (keys ``city`` and ``province``)."""
    city, province = address.get("city"), address.get("province")
    return locate(city if isinstance(city, str) else None, province if isinstance(province, str) else None)
