"""China's administrative divisions (province → city → district/county) with a point for each.

The data is ``cpca/resources/adcodes.csv`` of the ``cpca`` package (MIT, github.com/DQinYuan/
chinese_province_city_area_mapper): 12-digit GB/T 2260 codes, names and longitude/latitude of every
province, prefecture-level city and county-level division. The file is read from the installed
distribution without importing ``cpca`` (which would load pandas). The code gives the tree: digits
1-2 province, 3-4 city, 5-6 district.

``find`` matches an address as platforms send it (province/city/district fields, with or without
省/市/区/县 suffixes, 自治区, 直辖市 written 北京/北京市 with city 北京市 or 市辖区, county-level cities
under 省直辖县级行政区划, a district in the city field) and answers the deepest level it is sure of:
the district, else the city, else the province. A name is only taken when it is unique where it is
looked for (``西湖区`` alone is Hangzhou's or Nanchang's: not a district match).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib.metadata import distribution
from pathlib import Path

LEVELS = ("district", "city", "province")
_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})  # 北京 天津 上海 重庆: province and city at once
# city-level rows that are not a city: a district under them belongs to the province as a whole
_NOT_A_CITY = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
_SUFFIXES = (
    "维吾尔自治区",
    "特别行政区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "自治州",
    "自治县",
    "自治旗",
    "地区",
    "新区",
    "林区",
    "特区",
    "省",
    "市",
    "区",
    "县",
    "旗",
    "盟",
)


@dataclass(frozen=True)
class Division:
    code: str  # 6 digits
    name: str
    level: str  # province | city | district
    lat: float | None
    lng: float | None

    @property
    def province_code(self) -> str:
        return self.code[:2]

    @property
    def city_code(self) -> str:
        return self.code[:4]


@dataclass(frozen=True)
class Found:
    """The deepest division matched, the names from the province down, and what was given but not found."""

    division: Division
    path: tuple[str, ...]
    missed: str = ""  # e.g. "district '东城街道'"


def data_file() -> Path:
    return Path(str(distribution("cpca").locate_file("cpca/resources/adcodes.csv")))


def key(name: str) -> str:
    """No spaces; one administrative suffix removed (longest first), never down to nothing."""
    s = "".join(name.split())
    for suffix in _SUFFIXES:
        if s.endswith(suffix) and len(s) > len(suffix):
            return s[: -len(suffix)]
    return s


@dataclass(frozen=True)
class _Tree:
    by_code: dict[str, Division]
    # (scope, key) -> divisions; scope "" = anywhere, "33" = in a province, "3301" = in a city
    provinces: dict[str, list[Division]]
    cities: dict[tuple[str, str], list[Division]]
    districts: dict[tuple[str, str], list[Division]]


@cache
def _tree() -> _Tree:
    by_code: dict[str, Division] = {}
    provinces: dict[str, list[Division]] = defaultdict(list)
    cities: dict[tuple[str, str], list[Division]] = defaultdict(list)
    districts: dict[tuple[str, str], list[Division]] = defaultdict(list)
    with data_file().open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            code = row["adcode"][:6]
            level = "province" if code.endswith("0000") else "city" if code.endswith("00") else "district"
            lat, lng = (float(v) if (v := row[k].strip()) else None for k in ("latitude", "longitude"))
            d = Division(code, row["name"].strip(), level, lat, lng)
            by_code[code] = d
            names = {d.name, key(d.name)}
            for n in names:
                if level == "province":
                    provinces[n].append(d)
                elif level == "city" and d.name not in _NOT_A_CITY:
                    for scope in ("", d.province_code):
                        cities[(scope, n)].append(d)
                elif level == "district":
                    for scope in ("", d.province_code, d.city_code):
                        districts[(scope, n)].append(d)
    return _Tree(by_code, dict(provinces), dict(cities), dict(districts))


def _one(index: dict, scope: str, name: str) -> Division | None:
    """The division called ``name`` in ``scope``: its full name first, then without suffix; unique only."""
    for n in dict.fromkeys((name, key(name))):
        found = index.get((scope, n)) if scope is not None else index.get(n)
        if found and len({d.code for d in found}) == 1:
            return found[0]
    return None


def _province(name: str) -> Division | None:
    tree = _tree()
    for n in dict.fromkeys((name, key(name))):
        if (found := tree.provinces.get(n)) and len(found) == 1:
            return found[0]
    return None


def _placeholder(city: str, prov: Division | None) -> bool:
    """A city field that names no city: 市辖区/县, or the municipality again (北京 / 北京市)."""
    return city.strip() in _NOT_A_CITY or (prov is not None and key(city) == key(prov.name))


def find(province: str | None, city: str | None, district: str | None) -> Found | None:
    """The deepest division of an address with a point (district → city → province), or None."""
    tree = _tree()
    prov = _province(province) if province else None
    cty: Division | None = None
    dist: Division | None = None
    if city:
        municipality = _province(city) if prov is None else None
        if municipality is not None and municipality.province_code in _MUNICIPALITIES:
            prov = municipality  # 北京市 in the city field: the municipality
        elif _placeholder(city, prov):
            pass  # 市辖区, or a municipality written again as its city
        else:
            cty = _one(tree.cities, prov.province_code if prov else "", city)
            if cty is None:  # a county-level city or district sent as the city
                dist = _one(tree.districts, prov.province_code if prov else "", city)
    if district and dist is None:
        anywhere = "" if not (province or city) else None  # a city or province we do not know: no guess
        for scope in (cty.city_code if cty else None, prov.province_code if prov else None, anywhere):
            if scope is not None and (dist := _one(tree.districts, scope, district)) is not None:
                break
        if dist is not None and (
            (cty and dist.city_code != cty.city_code) or (prov and dist.province_code != prov.province_code)
        ):
            dist = None  # found elsewhere than the address's own city or province: not this one
    if dist is not None:
        cty = cty or tree.by_code.get(dist.city_code + "00")
        prov = prov or tree.by_code.get(dist.province_code + "0000")
    elif cty is not None:
        prov = prov or tree.by_code.get(cty.province_code + "0000")
    missed = ""
    if district and dist is None:
        missed = f"district {district!r}"
    elif city and cty is None and dist is None and not _placeholder(city, prov):
        missed = f"city {city!r}"
    for level in (dist, cty, prov):
        if level is not None and level.lat is not None and level.lng is not None:
            path = tuple(x.name for x in (prov, cty, dist) if x is not None and x.name not in _NOT_A_CITY)
            return Found(level, path[: LEVELS[::-1].index(level.level) + 1], missed)
    return None
