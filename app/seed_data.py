# ruff: noqa: E501, RUF001  (tables read best one row a line; Chinese text uses full-width punctuation)
"""The demo tenant's static data: a coffee brand selling on five channels from eight locations.

Plain data only (``app.seed`` turns it into rows through the domain services). Order and listing ids
are fixed, never derived from today's date, so seeding again recognises what it already sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---- channels --------------------------------------------------------------------------------------

CHANNELS = (
    {"code": "tmall", "name": "Demo Brand 天猫旗舰店", "platform": "tmall"},
    {"code": "jd", "name": "Demo Brand 京东旗舰店", "platform": "jd", "default_carrier": "SF"},
    {"code": "web", "name": "Demo Brand 官网商城", "platform": "web", "is_core": True},
    {"code": "mini_program", "name": "Demo Brand 微信小程序", "platform": "mini_program", "is_core": True},
    {"code": "pos_sh_flagship", "name": "上海南京路旗舰店 POS", "platform": "pos", "is_core": True},
)
# Generic-format channels the seed sends orders through (marketplaces bring their own).
ORDER_CHANNELS = ("web", "mini_program", "pos_sh_flagship")

# ---- locations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    kind: str  # warehouse | store
    city: str  # English name, as in the cities CSV
    address: str
    priority: int
    daily_capacity: int
    tags: tuple[str, ...]


SITES = (
    Site("SH-DC", "上海嘉定仓 Shanghai DC", "warehouse", "Shanghai", "上海市嘉定区马陆镇宝安公路 2999 号", 10, 5000, ("dc", "east", "hub")),
    Site("BJ-DC", "北京顺义仓 Beijing DC", "warehouse", "Beijing", "北京市顺义区天竺空港工业区 B 区 18 号", 20, 3000, ("dc", "north")),
    Site("GZ-DC", "广州白云仓 Guangzhou DC", "warehouse", "Guangzhou", "广州市白云区太和镇永兴村物流园 6 号库", 20, 3000, ("dc", "south")),
    Site("CD-DC", "成都双流仓 Chengdu DC", "warehouse", "Chengdu", "成都市双流区西航港大道 588 号", 30, 1500, ("dc", "southwest")),
    Site("SH-NJR", "上海南京路旗舰店", "store", "Shanghai", "上海市黄浦区南京东路 300 号 1 层", 100, 120, ("store", "flagship", "east")),
    Site("HZ-WL", "杭州西湖店", "store", "Hangzhou", "杭州市上城区湖滨路 28 号 湖滨银泰 in77 C 区", 110, 80, ("store", "east")),
    Site("SZ-FT", "深圳福田店", "store", "Shenzhen", "深圳市福田区福华三路 269 号 COCO Park 1 层", 110, 80, ("store", "south")),
    Site("BJ-SLT", "北京三里屯店", "store", "Beijing", "北京市朝阳区三里屯路 19 号 太古里南区 S6", 110, 80, ("store", "north")),
)  # fmt: skip
STORE_CAPABILITIES = ("ship", "pickup", "same_day")

# Used only when the cities CSV is missing (same figures as the CSV).
FALLBACK_CITIES = {
    "Shanghai": ("Shanghai", "East", 31.2304, 121.4737),
    "Beijing": ("Beijing", "North", 39.9042, 116.4074),
    "Guangzhou": ("Guangdong", "South", 23.1291, 113.2644),
    "Chengdu": ("Sichuan", "Southwest", 30.5728, 104.0668),
    "Hangzhou": ("Zhejiang", "East", 30.2741, 120.1551),
    "Shenzhen": ("Guangdong", "South", 22.5431, 114.0579),
}

# ---- catalog ---------------------------------------------------------------------------------------


def ean13(twelve: str) -> str:
    """An EAN-13 with its check digit (GS1 prefix 69x: China)."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(twelve))
    return twelve + str((10 - total % 10) % 10)


def _m(n: int, code: str, name: str, weight: int, volume: int, low: int | None, attrs: dict, **flags) -> dict:
    return {
        "code": code,
        "name": name,
        "barcode": ean13(f"6971234{n:05d}"),
        "weight_g": weight,
        "volume_cm3": volume,
        "low_stock_threshold": low,
        "attributes": attrs,
        **flags,
    }


MATERIALS = (
    _m(1, "ESP-AURORA", "Aurora 半自动意式咖啡机", 9800, 42000, 5, {"colour": "银色", "voltage": "220V", "boiler": "双锅炉"}, fragile=True, high_value=True, serial_tracked=True),
    _m(2, "GRD-C64", "C64 锥刀磨豆机", 3200, 9000, 5, {"colour": "黑色", "burr": "64mm 锥刀"}, fragile=True, serial_tracked=True),
    _m(3, "FRO-01", "电动奶泡机", 650, 2400, 5, {"colour": "白色", "capacity_ml": 240}),
    _m(4, "KTL-GN600", "手冲细口壶 600ml", 1100, 3500, 4, {"colour": "哑光黑", "capacity_ml": 600}),
    _m(5, "BEAN-YIR-250", "埃塞俄比亚 耶加雪菲 咖啡豆 250g", 280, 900, 30, {"origin": "Ethiopia", "roast": "浅烘", "weight": "250g"}, batch_tracked=True),
    _m(6, "BEAN-HUI-250", "哥伦比亚 慧兰 咖啡豆 250g", 280, 900, 30, {"origin": "Colombia", "roast": "中烘", "weight": "250g"}, batch_tracked=True),
    _m(7, "BEAN-YUN-250", "云南 保山 咖啡豆 250g", 280, 900, 30, {"origin": "China (Yunnan)", "roast": "中烘", "weight": "250g"}, batch_tracked=True),
    _m(8, "BEAN-MAN-250", "印尼 曼特宁 咖啡豆 250g", 280, 900, 30, {"origin": "Indonesia", "roast": "深烘", "weight": "250g"}, batch_tracked=True),
    _m(9, "BEAN-HOUSE-1KG", "招牌意式拼配 咖啡豆 1kg", 1050, 3200, 20, {"origin": "Blend", "roast": "中深烘", "weight": "1kg"}, batch_tracked=True),
    _m(10, "DRIP-10", "挂耳咖啡 10 片装", 150, 1200, 40, {"origin": "Blend", "pieces": 10}, batch_tracked=True),
    _m(11, "CUP-TRV-350", "随行保温杯 350ml", 320, 1100, 10, {"colour": "燕麦色", "capacity_ml": 350}),
    _m(12, "CUP-CER-2", "陶瓷咖啡杯 两只装", 680, 2600, 10, {"colour": "白色", "capacity_ml": 200}, fragile=True),
    _m(13, "FLT-V60-100", "V60 锥形滤纸 100 张", 180, 700, 20, {"size": "02"}),
    _m(14, "DSC-500", "咖啡机除垢剂 500ml", 560, 600, 10, {"volume_ml": 500}),
    _m(15, "TOTE-CANVAS", "品牌帆布托特包", 220, 800, None, {"colour": "米白"}),
)  # fmt: skip


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    kind: str  # single | bundle | gift | virtual | service
    price: str  # CNY, what the channels charge (products carry no price)
    components: tuple[tuple[str, int], ...] = ()


def _single(material: dict, price: str) -> Item:
    return Item("P-" + material["code"], material["name"], "single", price, ((material["code"], 1),))


_PRICES = ("6999.00", "1899.00", "399.00", "459.00", "118.00", "108.00", "88.00", "98.00", "268.00",
           "69.00", "189.00", "159.00", "39.00", "79.00")  # fmt: skip
PRODUCTS = (
    *(_single(m, price) for m, price in zip(MATERIALS[:14], _PRICES, strict=True)),
    Item(
        "KIT-AURORA-START",
        "Aurora 咖啡机入门套装（含三款咖啡豆）",
        "bundle",
        "7199.00",
        (("ESP-AURORA", 1), ("BEAN-YIR-250", 1), ("BEAN-HUI-250", 1), ("BEAN-YUN-250", 1)),
    ),
    Item("GIFT-TOTE", "赠品：品牌帆布托特包", "gift", "0", (("TOTE-CANVAS", 1),)),
    Item("CARD-200", "电子礼品卡 ¥200", "virtual", "200.00"),
    Item("SVC-INSTALL", "咖啡机上门安装调试", "service", "199.00"),
)
# What each channel lists: marketplaces sell goods only; own channels also the card and the service.
GOODS = tuple(p.code for p in PRODUCTS if p.kind in ("single", "bundle"))
LISTED = {
    "tmall": GOODS,
    "jd": GOODS,
    "web": (*GOODS, "CARD-200", "SVC-INSTALL"),
    "mini_program": (*GOODS, "CARD-200", "SVC-INSTALL"),
    "pos_sh_flagship": (*GOODS, "CARD-200", "SVC-INSTALL"),
}

# ---- stock -----------------------------------------------------------------------------------------

# Units received per material: (SH-DC, BJ-DC, GZ-DC, CD-DC, SH-NJR, HZ-WL, SZ-FT, BJ-SLT).
# The machine, frother and kettle are deliberately short: the demo orders push them under their
# low-stock thresholds, and one office order cannot be served at all (awaiting stock).
STOCK_AT = ("SH-DC", "BJ-DC", "GZ-DC", "CD-DC", "SH-NJR", "HZ-WL", "SZ-FT", "BJ-SLT")
STOCK = {
    "ESP-AURORA": (3, 2, 1, 0, 1, 0, 0, 0),
    "GRD-C64": (12, 6, 5, 2, 2, 1, 1, 1),
    "FRO-01": (4, 0, 2, 0, 0, 0, 0, 0),
    "KTL-GN600": (3, 0, 0, 0, 0, 0, 0, 0),
    "BEAN-YIR-250": (180, 90, 80, 40, 24, 12, 12, 12),
    "BEAN-HUI-250": (160, 80, 70, 40, 24, 12, 12, 12),
    "BEAN-YUN-250": (150, 70, 60, 60, 20, 10, 10, 10),
    "BEAN-MAN-250": (120, 60, 50, 30, 18, 8, 8, 8),
    "BEAN-HOUSE-1KG": (90, 45, 40, 20, 10, 6, 6, 6),
    "DRIP-10": (300, 150, 150, 80, 40, 20, 20, 20),
    "CUP-TRV-350": (60, 30, 30, 15, 12, 8, 8, 8),
    "CUP-CER-2": (40, 20, 20, 10, 8, 6, 4, 4),
    "FLT-V60-100": (200, 100, 100, 50, 20, 10, 10, 10),
    "DSC-500": (80, 40, 40, 20, 6, 4, 4, 4),
    "TOTE-CANVAS": (200, 100, 100, 50, 30, 20, 20, 20),
}
# (location, material, units): display and walk-in stock the network must not sell.
SAFETY = (
    ("SH-NJR", "ESP-AURORA", 1),
    ("SH-NJR", "BEAN-YIR-250", 6),
    ("SH-NJR", "BEAN-HUI-250", 6),
    ("HZ-WL", "BEAN-YIR-250", 4),
    ("SZ-FT", "BEAN-YIR-250", 4),
    ("BJ-SLT", "BEAN-YIR-250", 4),
    ("SH-DC", "DRIP-10", 20),
)

# ---- customers and orders --------------------------------------------------------------------------

# (name, phone, email, province, city, district, street, postcode); cities are in the cities CSV.
PEOPLE = (
    ("王芳", "13817264501", "wangfang@example.cn", "上海市", "上海市", "静安区", "南京西路 1266 号 恒隆广场 2 座 1502 室", "200040"),
    ("李强", "13910457723", "liqiang@example.cn", "北京市", "北京市", "朝阳区", "建国路 87 号 华贸中心 1 号写字楼 901", "100025"),
    ("张伟", "13588036142", None, "浙江省", "杭州市", "西湖区", "文三路 259 号 昌地火炬大厦 1 号楼 1203", "310012"),
    ("陈静", "13602284519", "chenjing@example.cn", "广东省", "广州市", "天河区", "天河路 385 号 太古汇一座 2208", "510620"),
    ("刘洋", "13770921836", "liuyang@example.cn", "江苏省", "南京市", "鼓楼区", "中山北路 30 号 城市名人大厦 1806", "210008"),
    ("杨磊", "13971238804", None, "湖北省", "武汉市", "江汉区", "建设大道 568 号 新世界国贸大厦 3308", "430022"),
    ("赵敏", "13880617253", "zhaomin@example.cn", "四川省", "成都市", "锦江区", "红星路三段 1 号 IFS 国际金融中心 2 号楼 1105", "610021"),
    ("黄婷", "13510983367", "huangting@example.cn", "广东省", "深圳市", "南山区", "科技南十二路 2 号 金蝶软件园 B 栋 7 楼", "518057"),
    ("周杰", "13708712290", None, "云南省", "昆明市", "五华区", "东风西路 11 号 顺城购物中心 东塔 1709", "650032"),
    ("吴昊", "13962145078", "wuhao@example.cn", "江苏省", "苏州市", "姑苏区", "人民路 383 号 苏州美罗商城 写字楼 12 楼", "215005"),
    ("徐丽", "13891354620", "xuli@example.cn", "陕西省", "西安市", "雁塔区", "高新路 52 号 高科大厦 1602", "710075"),
    ("孙涛", "13658307714", None, "重庆市", "重庆市", "渝中区", "民族路 188 号 环球金融中心 2905", "400010"),
    ("马骏", "13906028871", "majun@example.cn", "福建省", "厦门市", "思明区", "鹭江道 8 号 国际银行大厦 1101", "361001"),
    ("朱琳", "13601735528", "zhulin@example.cn", "上海市", "上海市", "徐汇区", "衡山路 12 弄 6 号 301 室", "200031"),
    ("胡斌", "13795306641", None, "上海市", "上海市", "长宁区", "愚园路 1088 弄 宏业花园 12 号 402", "200050"),
    ("郭晓", "13817592036", "guoxiao@example.cn", "上海市", "上海市", "浦东新区", "世纪大道 100 号 上海环球金融中心 37 楼", "200120"),
    ("何雪", "13757180429", "hexue@example.cn", "浙江省", "杭州市", "上城区", "解放路 85 号 杭州解百 B 座 803", "310009"),
    ("林峰", "13922716058", None, "广东省", "广州市", "越秀区", "环市东路 339 号 广东国际大厦 2610", "510098"),
    ("高燕", "13816405527", "gaoyan@example.cn", "北京市", "北京市", "海淀区", "中关村大街 27 号 中关村大厦 1108", ""),
)  # fmt: skip


@dataclass(frozen=True)
class DemoOrder:
    """One order the seed sends. ``hours_ago`` dates it relative to now; ``address`` False sends an
    address without a street (held: incomplete); ``status`` is the channel's."""

    channel: str
    external_id: str
    hours_ago: float
    person: int  # index into PEOPLE
    lines: tuple[tuple[str, int], ...]  # (product code, quantity)
    status: str = "paid"
    address: bool = True
    shipping: str = "0"
    extra: dict = field(default_factory=dict)


ORDERS = (
    DemoOrder("web", "WEB-100231", 70, 0, (("P-BEAN-YIR-250", 2), ("P-FLT-V60-100", 1))),
    DemoOrder("web", "WEB-100232", 66, 1, (("KIT-AURORA-START", 1), ("SVC-INSTALL", 1)), extra={"buyer_note": "周末上门安装"}),
    DemoOrder("web", "WEB-100233", 52, 2, (("P-GRD-C64", 1),), shipping="12.00"),
    DemoOrder("web", "WEB-100234", 47, 3, (("CARD-200", 1),), address=False),  # virtual: no address needed
    DemoOrder("web", "WEB-100235", 30, 4, (("P-FRO-01", 1), ("P-BEAN-HOUSE-1KG", 1))),
    DemoOrder("web", "WEB-100236", 29.95, 4, (("P-FRO-01", 1), ("P-BEAN-HOUSE-1KG", 1))),  # double submit
    DemoOrder("web", "WEB-100237", 1, 5, (("P-CUP-TRV-350", 2),), status="pending_payment"),
    DemoOrder("web", "WEB-100238", 20, 6, (("P-BEAN-HUI-250", 3),)),  # cancelled by the buyer below
    DemoOrder("mini_program", "MP-5003118", 60, 7, (("P-DRIP-10", 3),)),
    DemoOrder("mini_program", "MP-5003121", 44, 8, (("P-BEAN-YUN-250", 2), ("P-CUP-CER-2", 1))),
    DemoOrder("mini_program", "MP-5003127", 26, 9, (("P-BEAN-MAN-250", 1),), address=False),
    DemoOrder("mini_program", "MP-5003130", 18, 10, (("P-FRO-01", 2),)),
    DemoOrder("mini_program", "MP-5003134", 12, 11, (("P-DSC-500", 1), ("P-FLT-V60-100", 2))),
    DemoOrder("mini_program", "MP-5003139", 8, 12, (("P-ESP-AURORA", 1),), extra={"carrier": "SF"}),
    DemoOrder("mini_program", "MP-5003142", 3, 13, (("P-CUP-TRV-350", 1), ("P-BEAN-MAN-250", 2))),
    DemoOrder("pos_sh_flagship", "POS-SH01-000871", 50, 14, (("P-ESP-AURORA", 1), ("SVC-INSTALL", 1))),
    DemoOrder("pos_sh_flagship", "POS-SH01-000884", 36, 0, (("P-BEAN-HOUSE-1KG", 2),)),
    DemoOrder("pos_sh_flagship", "POS-SH01-000902", 22, 16, (("P-GRD-C64", 1), ("P-KTL-GN600", 1))),
    DemoOrder("pos_sh_flagship", "POS-SH01-000915", 6, 15, (("P-ESP-AURORA", 5),), extra={"invoice": True}),
    DemoOrder("pos_sh_flagship", "POS-SH01-000923", 2, 17, (("P-CUP-CER-2", 2), ("CARD-200", 1))),
    DemoOrder("web", "WEB-100239", 0.5, 18, (("P-BEAN-YIR-250", 1), ("P-DRIP-10", 2))),
)  # fmt: skip
CANCELLED = {"WEB-100238": "买错了规格，申请取消"}  # external id -> the buyer's reason
