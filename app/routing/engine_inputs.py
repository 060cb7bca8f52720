"""The routing engine's inputs: an order (``OrderInput`` with ``LineInput`` lines) and the locations that
could ship it (``Candidate``, with their stock). Plain data with ``to_dict``/``from_dict``, so a decision's
inputs can be stored and replayed (``stored_inputs``). Pure: no I/O.

Its own module because both the engine and the policy rules (``app.routing.policy``) read these types,
and the engine reads the policy: the types sit below both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Id = int | str


def id_key(v: Id) -> tuple[int, int, str]:
    """A sort key for ids that may be ints or strings (ints first, each in its natural order)."""
    return (0, v, "") if isinstance(v, int) else (1, 0, str(v))


@dataclass(frozen=True, slots=True)
class LineInput:
    id: Id
    material_id: Id
    quantity: int
    presale: bool = False
    cold_chain: bool = False
    service: bool = False  # installation etc.: no stock, no parcel

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "material_id": self.material_id,
            "quantity": self.quantity,
            "presale": self.presale,
            "cold_chain": self.cold_chain,
            "service": self.service,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LineInput:
        return cls(
            d["id"],
            d["material_id"],
            int(d["quantity"]),
            bool(d.get("presale", False)),
            bool(d.get("cold_chain", False)),
            bool(d.get("service", False)),
        )


@dataclass(frozen=True, slots=True)
class OrderInput:
    id: Id
    lines: tuple[LineInput, ...]
    lat: float
    lon: float
    channel: str = ""
    amount: Decimal = Decimal(0)
    customer_tags: frozenset[str] = frozenset()
    fulfilment_type: str = "delivery"  # delivery | pickup | same_day
    pickup_location_id: Id | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "amount", Decimal(str(self.amount)))
        object.__setattr__(self, "customer_tags", frozenset(self.customer_tags))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lines": [line.to_dict() for line in self.lines],
            "lat": self.lat,
            "lon": self.lon,
            "channel": self.channel,
            "amount": str(self.amount),
            "customer_tags": sorted(self.customer_tags),
            "fulfilment_type": self.fulfilment_type,
            "pickup_location_id": self.pickup_location_id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OrderInput:
        return cls(
            d["id"],
            tuple(LineInput.from_dict(x) for x in d["lines"]),
            float(d["lat"]),
            float(d["lon"]),
            d.get("channel", ""),
            Decimal(str(d.get("amount", "0"))),
            frozenset(d.get("customer_tags", ())),
            d.get("fulfilment_type", "delivery"),
            d.get("pickup_location_id"),
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    location_id: Id
    name: str
    kind: str = "warehouse"  # warehouse | store | third_party | drop_ship
    lat: float = 0.0
    lon: float = 0.0
    priority: int = 100  # lower = preferred on ties
    status: str = "active"  # active | paused | closed
    status_reason: str = ""
    capabilities: frozenset[str] = frozenset({"ship"})  # ship | pickup | same_day
    cold_chain: bool = False
    daily_capacity: int = 0  # 0 = unknown / unlimited
    load_today: int = 0
    stock: Mapping[Id, int] = field(default_factory=dict)  # material -> available
    cost_per_shipment: float = 0.0
    cost_per_km: float = 0.0
    sla_days: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))

    def to_dict(self, materials: Iterable[Id] | None = None) -> dict[str, Any]:
        """``materials``: keep only these in ``stock`` (what a stored decision needs)."""
        keep = None if materials is None else set(materials)
        return {
            "location_id": self.location_id,
            "name": self.name,
            "kind": self.kind,
            "lat": self.lat,
            "lon": self.lon,
            "priority": self.priority,
            "status": self.status,
            "status_reason": self.status_reason,
            "capabilities": sorted(self.capabilities),
            "cold_chain": self.cold_chain,
            "daily_capacity": self.daily_capacity,
            "load_today": self.load_today,
            # pairs, not an object: material ids may be ints, and JSON keys are strings
            "stock": [[m, q] for m, q in self.stock.items() if keep is None or m in keep],
            "cost_per_shipment": self.cost_per_shipment,
            "cost_per_km": self.cost_per_km,
            "sla_days": self.sla_days,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Candidate:
        stock = d.get("stock", ())
        return cls(
            d["location_id"],
            d["name"],
            d.get("kind", "warehouse"),
            float(d.get("lat", 0.0)),
            float(d.get("lon", 0.0)),
            int(d.get("priority", 100)),
            d.get("status", "active"),
            d.get("status_reason", ""),
            frozenset(d.get("capabilities", ("ship",))),
            bool(d.get("cold_chain", False)),
            int(d.get("daily_capacity", 0)),
            int(d.get("load_today", 0)),
            dict(stock.items()) if isinstance(stock, Mapping) else {m: int(q) for m, q in stock},
            float(d.get("cost_per_shipment", 0.0)),
            float(d.get("cost_per_km", 0.0)),
            float(d.get("sla_days", 2.0)),
        )


def stored_inputs(order: OrderInput, candidates: Sequence[Candidate]) -> dict[str, Any]:
    """The JSON to keep with an order so ``simulate`` can re-run the decision (stock trimmed to the order)."""
    materials = {line.material_id for line in order.lines}
    return {"order": order.to_dict(), "candidates": [c.to_dict(materials) for c in candidates]}
