"""Where a delivery address (or a location without coordinates) is: address → latitude/longitude.

Routing needs a point to measure distances from, and orders carry a postal address, not coordinates.
``locate_address`` finds the address's district in China's administrative divisions
(``app.routing.divisions``), else its city, else its province, and says which level it used: a store
radius of 3 km means little when measured from a city centre. English names (``Chengdu``,
``Guangdong``) are first put into Chinese with ``data/cn_cities.csv`` (40 cities in English and Chinese,
with their province and carrier region) and the province table below. No match → None: the order is
not routed (see ``app.routing.service``).

``locate`` (city, else province, in that small table only) names places the way carriers' rate tables
do (``app.routing.carriers.area_of``): English city and province names.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from app.routing import divisions

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
    matched: str  # the level used: "district" | "city" | "province"
    name: str  # what matched, e.g. "浙江省 杭州市 西湖区", or (``locate``) "Chengdu" or "Guangdong"
    code: str = ""  # its GB/T 2260 division code, when from the divisions table
    missed: str = ""  # what the address gave but was not found, e.g. "district '东城街道'"

    def to_dict(self) -> dict[str, Any]:
        return {
            "lat": self.lat,
            "lng": self.lng,
            "matched": self.matched,
            "name": self.name,
            "code": self.code,
            "missed": self.missed,
        }

    def describe(self) -> str:
        """One sentence for a decision's explanation: from where distances were measured, and why."""
        why = f"; {self.missed} not found" if self.missed else ""
        return f"Distances measured from {self.name}: address located at {self.matched} level{why}."


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


@cache
def _chinese_names() -> dict[str, str]:
    """English (or pinyin) key -> Chinese name, for the cities in the city table and all provinces."""
    names = {_key(en): zh for zh, en in PROVINCES_ZH.items()}
    with DATA.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            names.setdefault(_key(row["city"]), row["city_zh"])
    return names


def locate_address(address: Mapping[str, Any]) -> Place | None:
    """The point of an address JSON (keys ``province``, ``city``, ``district``): district, else city,
    else province; names in Chinese, or in English where the city table knows them."""
    fields = [address.get(k) for k in ("province", "city", "district")]
    province, city, district = (v.strip() if isinstance(v, str) and v.strip() else None for v in fields)
    zh = _chinese_names()
    found = divisions.find(province, city, district) or divisions.find(
        *(zh.get(_key(v), v) if v else None for v in (province, city, district))
    )
    if found is None:
        return None
    d = found.division
    return Place(d.lat or 0.0, d.lng or 0.0, d.level, " ".join(found.path), d.code, found.missed)
