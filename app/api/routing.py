"""GraphQL of routing: the tenant's policy (read, change at run time), an order's explained decisions,
simulation of a policy on past decisions, and asking for an order to be routed again.

Decisions are shown as stored (``Decision.to_dict``): location ids in them become global ``Location``
ids here; engine line ids are ``"<order line row>:<material row>"`` and materials are material codes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.orders.common import ADMIN, READ, READ_SCOPE, WRITE, actor_name, gid, need_row
from app.api.relay import RowLoader, TenantScopedNode, decode_tenant_node_id, load_nodes
from app.api.scopes import guarded_by
from app.errors import UserError
from app.orders.models import Order
from app.routing import policies, redrive
from app.routing import service as routing
from app.routing.models import RoutingDecision, RoutingPolicy
from app.routing.policy import FACTORS, RULE_KINDS


@strawberry.type(name="RoutingPolicy", description="How orders are routed; see docs/DESIGN.md §5.")
class RoutingPolicyType:
    name: str
    mode: str = strawberry.field(description="lexicographic (complete > nearest > priority) or weighted.")
    weights: JSON = strawberry.field(description="Weighted mode: factor -> weight.")
    rules: JSON = strawberry.field(
        description="Rules run before scoring, in order: {code, kind, params, enabled}."
    )
    max_shipments: int | None
    store_radius_km: float
    kind_bonus: JSON = strawberry.field(description='Brand preference, e.g. {"store": 1} for stores first.')
    allow_line_split: bool
    fewest_shipments_first: bool = strawberry.field(
        description="Fewest shipments first (default); when false, shipmentPenalty prices each shipment."
    )
    shipment_penalty: float = strawberry.field(
        description="Per shipment when fewestShipmentsFirst is false: score (weighted) or km (lexicographic)."
    )
    time_budget_ms: float = strawberry.field(
        description="How long one decision may search (ms); past it the best plan found is used, and the"
        " decision says it is not proven optimal (provenOptimal)."
    )
    carrier_weights: JSON = strawberry.field(description='Carrier choice: {"cost": w, "sla": w}.')
    merge_window_minutes: int = strawberry.field(
        description="Orders of one buyer and address placed this close are shipped together (0: off)."
    )
    release_delay_minutes: int = strawberry.field(
        description="Routed orders are handed to locations this much later, giving merges time (0: at once)."
    )
    ship_in_stock_part_of_presale: bool = strawberry.field(
        description=(
            "An order mixing lines in stock with lines waiting for presale stock ships the in-stock part"
            " now and the rest when its stock arrives (default true); false: the whole order waits."
        )
    )
    updated_by: str
    updated_at: datetime

    @strawberry.field(description="Factors a weight can be given to.")
    def factors(self) -> list[str]:
        return list(FACTORS)

    @strawberry.field(description="Rule kinds and what they do.")
    def rule_kinds(self) -> JSON:
        return dict(RULE_KINDS)

    @classmethod
    def from_row(cls, row: RoutingPolicy) -> RoutingPolicyType:
        p = policies.policy_from_row(row)
        return cls(
            name=p.name,
            mode=p.mode,
            weights=dict(p.weights),
            rules=[r.to_dict() for r in p.rules],
            max_shipments=p.max_shipments,
            store_radius_km=p.store_radius_km,
            kind_bonus=dict(p.kind_bonus),
            allow_line_split=p.allow_line_split,
            fewest_shipments_first=p.fewest_shipments_first,
            shipment_penalty=p.shipment_penalty,
            time_budget_ms=p.time_budget_ms,
            carrier_weights=policies.carrier_weights(row),
            **policies.routing_options(row),
            ship_in_stock_part_of_presale=policies.ships_in_stock_part(row),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )


@strawberry.input(description="Fields left out keep their value; weights and kindBonus are merged.")
class RoutingPolicyInput:
    name: str | None = strawberry.UNSET
    mode: str | None = strawberry.UNSET
    weights: JSON | None = strawberry.UNSET
    rules: JSON | None = strawberry.UNSET
    max_shipments: int | None = strawberry.field(default=strawberry.UNSET, description="null: no limit.")
    store_radius_km: float | None = strawberry.UNSET
    kind_bonus: JSON | None = strawberry.UNSET
    allow_line_split: bool | None = strawberry.UNSET
    fewest_shipments_first: bool | None = strawberry.UNSET
    shipment_penalty: float | None = strawberry.UNSET
    time_budget_ms: float | None = strawberry.field(default=strawberry.UNSET, description="5-5000 ms.")
    carrier_weights: JSON | None = strawberry.field(
        default=strawberry.UNSET, description='Merged: {"cost": w, "sla": w} (0-1000 each).'
    )
    merge_window_minutes: int | None = strawberry.field(default=strawberry.UNSET, description="0-1440.")
    release_delay_minutes: int | None = strawberry.field(default=strawberry.UNSET, description="0-1440.")
    ship_in_stock_part_of_presale: bool | None = strawberry.UNSET


def _changes(input: RoutingPolicyInput | None) -> dict[str, Any]:
    if input is None:
        return {}
    out = {k: v for k, v in vars(input).items() if v is not strawberry.UNSET}
    for key, value in out.items():
        if value is None and key != "max_shipments":
            raise UserError("INVALID_POLICY", "give a value or leave the field out", policies.FIELDS[key])
    return out


@strawberry.type
class RoutingPolicyPayload:
    policy: RoutingPolicyType | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type(name="RoutingShipmentLine")
class ShipmentLineType:
    line_id: str
    material: str = strawberry.field(description="Material code.")
    quantity: int


@strawberry.type(name="RoutingShipment")
class ShipmentType:
    location_id: strawberry.ID
    name: str
    kind: str
    group: str
    distance_km: float
    cost: float
    lines: list[ShipmentLineType]
    carrier: str | None = strawberry.field(default=None, description="The carrier chosen for it.")
    carrier_service: str | None = None
    carrier_explanation: str | None = strawberry.field(
        default=None, description="Why that carrier: every carrier considered, its cost, SLA days, score."
    )
    carrier_options: JSON | None = strawberry.field(
        default=None, description="[{carrier, service, cost, sla_days, score, excluded, chosen}]"
    )


@strawberry.type(name="RoutingUnfilledLine")
class UnfilledType:
    line_id: str
    material: str
    quantity: int
    reason: str
    codes: list[str]


@strawberry.type(name="RoutingCandidate", description="A location as the engine saw it.")
class CandidateType:
    location_id: strawberry.ID
    name: str
    kind: str
    distance_km: float
    priority: int
    excluded_by: str | None = strawberry.field(description="The rule that excluded it.")
    reason: str | None
    restricted: JSON = strawberry.field(description="[line, rule, why]: lines a rule keeps it from shipping.")
    covers: list[str] = strawberry.field(description="Lines it could ship whole.")
    factors: JSON
    normalised: JSON
    score: float | None
    chosen: bool


def _loc(info: Info, value: Any) -> strawberry.ID:
    return gid(info, "Location", value)


@guarded_by(READ_SCOPE)
@strawberry.type(name="RoutingDecision", description="One routing attempt of an order, explained.")
class RoutingDecisionNode(TenantScopedNode):
    id: strawberry.relay.NodeID[int]
    attempt: int
    status: str = strawberry.field(
        description="routed, partial, unfillable, needs_split_approval, unlocated or stock_moved."
    )
    explanation: str
    created_at: datetime
    policy: JSON = strawberry.field(description="The policy as it was when deciding.")
    decision: strawberry.Private[dict[str, Any]]
    order_row_id: strawberry.Private[int]
    place: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="How precisely the address was located: district, city or province.")
    def address_level(self) -> str | None:
        return self.place.get("matched")

    @strawberry.field(description="The division distances were measured from, e.g. 浙江省 杭州市 西湖区.")
    def address_division(self) -> str | None:
        return self.place.get("name")

    @strawberry.field
    def order_id(self, info: Info) -> strawberry.ID:
        return gid(info, "Order", self.order_row_id)

    @strawberry.field
    def carrier(self) -> str | None:
        return self.decision.get("carrier")

    @strawberry.field(
        description="False when the time budget ran out before the plan was proven optimal: it is the best"
        " plan found by then (the explanation says so). Null when the engine did not run (unlocated)."
    )
    def proven_optimal(self) -> bool | None:
        if "shipments" not in self.decision:
            return None
        return self.decision.get("proven_optimal", True)  # decisions stored before the budget: exact

    @strawberry.field(description="The time budget the decision ran under (ms); null: none.")
    def budget_ms(self) -> float | None:
        return self.decision.get("budget_ms")

    @strawberry.field
    def weights(self) -> JSON:
        return self.decision.get("weights") or {}

    @strawberry.field
    def shipments(self, info: Info) -> list[ShipmentType]:
        return [
            ShipmentType(
                location_id=_loc(info, s["location_id"]),
                name=s["name"],
                kind=s["kind"],
                group=s["group"],
                distance_km=s["distance_km"],
                cost=s["cost"],
                lines=[
                    ShipmentLineType(line_id=str(a), material=str(b), quantity=q) for a, b, q in s["lines"]
                ],
                carrier=(s.get("carrier") or {}).get("carrier"),
                carrier_service=(s.get("carrier") or {}).get("service"),
                carrier_explanation=(s.get("carrier") or {}).get("explanation"),
                carrier_options=(s.get("carrier") or {}).get("options"),
            )
            for s in self.decision.get("shipments", [])
        ]

    @strawberry.field
    def unfilled(self) -> list[UnfilledType]:
        return [
            UnfilledType(
                line_id=str(u["line_id"]),
                material=str(u["material_id"]),
                quantity=u["quantity"],
                reason=u["reason"],
                codes=list(u["codes"]),
            )
            for u in self.decision.get("unfilled", [])
        ]

    @strawberry.field
    def candidates(self, info: Info) -> list[CandidateType]:
        return [
            CandidateType(
                location_id=_loc(info, c["location_id"]),
                name=c["name"],
                kind=c["kind"],
                distance_km=c["distance_km"],
                priority=c["priority"],
                excluded_by=c["excluded_by"],
                reason=c["reason"],
                restricted=c["restricted"],
                covers=[str(x) for x in c["covers"]],
                factors=c["factors"],
                normalised=c["normalised"],
                score=c["score"],
                chosen=c["chosen"],
            )
            for c in self.decision.get("candidates", [])
        ]

    @classmethod
    def from_row(cls, row: RoutingDecision) -> RoutingDecisionNode:
        return cls(
            id=row.id,
            attempt=row.attempt,
            status=row.status,
            explanation=row.explanation,
            created_at=row.created_at,
            policy=row.policy,
            decision=row.decision or {},
            order_row_id=row.order_id,
            place=(row.inputs or {}).get("place") or {},
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(
            info, RowLoader(info, RoutingDecision), node_ids, cls.from_row, tenant_scoped=True
        )


@strawberry.type
class OrderRouting:
    order_id: strawberry.ID
    order_status: str
    decisions: list[RoutingDecisionNode] = strawberry.field(description="Every attempt, oldest first.")

    @strawberry.field(description="The last attempt.")
    def latest(self) -> RoutingDecisionNode | None:
        return self.decisions[-1] if self.decisions else None


@strawberry.input
class SimulateRoutingInput:
    policy: RoutingPolicyInput | None = strawberry.field(
        default=None, description="Changes to the current policy to try (nothing is saved)."
    )
    order_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="At most 500.")
    last: int = strawberry.field(default=50, description="Without orderIds: the last N orders routed.")


@strawberry.type(name="RoutingComparison")
class ComparisonType:
    order_id: strawberry.ID
    order_number: str
    status_before: str
    status_after: str
    shipments_before: int
    shipments_after: int
    distance_km_before: float
    distance_km_after: float
    cost_before: float
    cost_after: float
    unfilled_delta: int
    changed: bool
    locations_before: list[strawberry.ID]
    locations_after: list[strawberry.ID]


@strawberry.type(name="RoutingSimulationTotals")
class TotalsType:
    orders: int
    changed: int
    shipments_before: int
    shipments_after: int
    distance_km_before: float
    distance_km_after: float
    cost_before: float
    cost_after: float
    unfilled_before: int
    unfilled_after: int


@strawberry.type
class RoutingSimulation:
    policy: JSON | None = None
    orders: list[ComparisonType] = strawberry.field(default_factory=list)
    totals: TotalsType | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class RouteOrderInput:
    order_id: strawberry.ID


@strawberry.type
class RouteOrderPayload:
    requested: bool = strawberry.field(
        default=False, description="A job that moves the order on was enqueued or is already waiting."
    )
    action: str | None = strawberry.field(
        default=None,
        description=(
            "route: routing enqueued; hand_over: fulfilment orders never handed to their location are"
            " handed over again; waiting: such a job is already waiting (nothing added)."
        ),
    )
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _comparison(info: Info, c: dict[str, Any]) -> ComparisonType:
    return ComparisonType(
        order_id=gid(info, "Order", c["order_row_id"]),
        order_number=c["order_number"],
        status_before=c["status_before"],
        status_after=c["status_after"],
        shipments_before=c["shipments_before"],
        shipments_after=c["shipments_after"],
        distance_km_before=c["distance_km_before"],
        distance_km_after=c["distance_km_after"],
        cost_before=c["cost_before"],
        cost_after=c["cost_after"],
        unfilled_delta=c["unfilled_delta"],
        changed=c["changed"],
        locations_before=[_loc(info, x) for x in c["locations_before"]],
        locations_after=[_loc(info, x) for x in c["locations_after"]],
    )


@strawberry.type
class RoutingQueries:
    @strawberry.field(permission_classes=READ, description="The active routing policy.")
    async def routing_policy(self, info: Info) -> RoutingPolicyType:
        async with info.context.tenant_session() as session:
            return RoutingPolicyType.from_row(await policies.active_row(session))

    @strawberry.field(permission_classes=READ, description="An order's routing decisions, explained.")
    async def order_routing(self, info: Info, order_id: strawberry.ID) -> OrderRouting | None:
        row_id = decode_tenant_node_id(info, order_id, "Order")
        if row_id is None:
            return None
        async with info.context.tenant_session() as session:
            order = await session.get(Order, row_id)
            if order is None:
                return None
            rows = await routing.decisions_of(session, row_id)
        return OrderRouting(
            order_id=gid(info, "Order", row_id),
            order_status=order.status.value,
            decisions=[RoutingDecisionNode.from_row(r) for r in rows],
        )

    @strawberry.field(
        permission_classes=READ,
        description="Re-run past decisions under a changed policy and compare (nothing is saved).",
    )
    async def simulate_routing(self, info: Info, input: SimulateRoutingInput) -> RoutingSimulation:
        async def work(session):
            policy = policies.apply_changes(await policies.get_policy(session), _changes(input.policy))
            ids = None
            if input.order_ids is not None:
                ids = [
                    need_row(info, x, "Order", "order", ["orderIds", str(i)])
                    for i, x in enumerate(input.order_ids)
                ]
            return await policies.simulate_orders(session, policy, order_ids=ids, last=input.last)

        result, errors = await in_tenant(info, work)
        if errors:
            return RoutingSimulation(user_errors=errors)
        return RoutingSimulation(
            policy=result.policy.to_dict(),
            orders=[_comparison(info, c) for c in result.orders],
            totals=TotalsType(**result.totals),
        )


@strawberry.type
class RoutingMutations:
    @strawberry.mutation(permission_classes=ADMIN, description="Change the routing policy; applies at once.")
    async def update_routing_policy(self, info: Info, input: RoutingPolicyInput) -> RoutingPolicyPayload:
        actor = await actor_name(info)

        async def work(session):
            return RoutingPolicyType.from_row(
                await policies.update_policy(session, _changes(input), actor=actor)
            )

        result, errors = await in_tenant(info, work)
        return RoutingPolicyPayload(policy=result, user_errors=errors)

    @strawberry.mutation(
        permission_classes=WRITE,
        description=(
            "Route an order (again), e.g. after fixing its address, or re-drive one a fault left stuck;"
            " NOT_ROUTABLE says why when there is nothing to do."
        ),
    )
    async def route_order(self, info: Info, input: RouteOrderInput) -> RouteOrderPayload:
        actor = await actor_name(info)

        async def work(session):
            return await redrive.request_routing(
                session, need_row(info, input.order_id, "Order", "order", "orderId"), actor=actor
            )

        action, errors = await in_tenant(info, work)
        return RouteOrderPayload(requested=action is not None, action=action, user_errors=errors)
