"""Audit rules: the checks an accepted (paid) order passes before stock is reserved for it.

Each built-in rule has a code, a weight and parameters; a tenant changes them through ``set_rule``
(one ``audit_rules`` row per changed rule, defaults from ``RULES`` otherwise). ``evaluate`` returns what
fired; ``holds`` applies the threshold (the pseudo-rule ``threshold``: hold when the fired weights add up
to ``params.min_weight``; by default any finding of weight > 0 holds). Operators then release or cancel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import identity
from app.db import session_tenant
from app.errors import NotFound, UserError
from app.orders import audit_checks as checks
from app.orders.models import AuditRule, BlacklistEntry, Order, OrderLine

THRESHOLD = "threshold"
BLACKLIST_KINDS = ("phone", "email", "buyer", "address")
MAX_WEIGHT = 1000


@dataclass(frozen=True)
class Finding:
    code: str
    weight: int
    reason: str


@dataclass(frozen=True)
class RuleSetting:
    code: str
    enabled: bool
    weight: int
    params: dict[str, Any]
    description: str = ""


Check = Callable[[checks.Ctx, dict[str, Any]], Awaitable[str | None]]


# --- parameter validators: value -> cleaned value, or UserError ---------------------------------------


def _int(low: int, high: int) -> Callable[[str, Any], int]:
    def clean(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UserError("INVALID_PARAMS", f"{name} must be a whole number from {low} to {high}", "params")
        return value

    return clean


def _money(name: str, value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if isinstance(value, bool) or not amount.is_finite() or amount <= 0 or amount > Decimal("1e12"):
        raise UserError("INVALID_PARAMS", f"{name} must be a positive amount", "params")
    return str(amount.quantize(Decimal("0.01")))


def _patterns(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 50:
        raise UserError("INVALID_PARAMS", f"{name} must be a list of at most 50 texts", "params")
    if not all(isinstance(p, str) and 0 < len(p.strip()) <= 100 for p in value):
        raise UserError("INVALID_PARAMS", f"each of {name} must be 1-100 characters", "params")
    return [p.strip() for p in value]


@dataclass(frozen=True)
class _Rule:
    code: str
    description: str
    check: Check | None
    weight: int = 100
    params: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Callable[[str, Any], Any]] = field(default_factory=dict)


RULES: tuple[_Rule, ...] = (
    _Rule("blacklist", "The customer, phone, e-mail, buyer id or address is blacklisted.", checks.blacklist),
    _Rule(
        "address_incomplete",
        "The address lacks a city, street or phone, has a very short street, or matches a pattern"
        " (e.g. PO box, 自提点).",
        checks.address_incomplete,
        params={"min_street_length": 4, "patterns": []},
        schema={"min_street_length": _int(0, 100), "patterns": _patterns},
    ),
    _Rule(
        "amount_anomaly",
        "The total is above max_total or not positive, or a paid order is paid short.",
        checks.amount_anomaly,
        params={"max_total": "50000.00"},
        schema={"max_total": _money},
    ),
    _Rule(
        "promo_abuse",
        "The customer used the same promo code more than max_uses times within days, on any channel.",
        checks.promo_abuse,
        params={"max_uses": 1, "days": 30},
        schema={"max_uses": _int(1, 1000), "days": _int(1, 365)},
    ),
    _Rule(
        "scalper",
        "More than max_orders orders to the same address within hours.",
        checks.scalper,
        params={"max_orders": 5, "hours": 24},
        schema={"max_orders": _int(1, 10000), "hours": _int(1, 24 * 30)},
    ),
    _Rule(
        "duplicate",
        "Another order with the same customer, address and items within minutes, on any channel.",
        checks.duplicate,
        params={"minutes": 30},
        schema={"minutes": _int(1, 24 * 60)},
    ),
    _Rule(
        THRESHOLD,
        "Not a check: hold when the weights of the rules that fired add up to params.min_weight.",
        None,
        weight=0,
        params={"min_weight": 1},
        schema={"min_weight": _int(1, MAX_WEIGHT * 10)},
    ),
)
BY_CODE = {rule.code: rule for rule in RULES}


# --- settings -------------------------------------------------------------------------------------------


async def rules(session: AsyncSession) -> list[RuleSetting]:
    """Every built-in rule with this tenant's setting (defaults where none is stored)."""
    rows = {row.code: row for row in (await session.scalars(select(AuditRule))).all()}
    return [_setting(rule, rows.get(rule.code)) for rule in RULES]


def _setting(rule: _Rule, row: AuditRule | None) -> RuleSetting:
    if row is None:
        return RuleSetting(rule.code, True, rule.weight, dict(rule.params), rule.description)
    params = {**rule.params, **{k: v for k, v in (row.params or {}).items() if k in rule.params}}
    return RuleSetting(rule.code, row.enabled, row.weight, params, rule.description)


async def set_rule(
    session: AsyncSession,
    code: str,
    *,
    enabled: bool | None = None,
    weight: int | None = None,
    params: dict[str, Any] | None = None,
) -> RuleSetting:
    """Change one rule's setting; ``params`` are merged over the current ones, each validated."""
    rule = BY_CODE.get(code)
    if rule is None:
        raise UserError("UNKNOWN_RULE", f"no audit rule {code!r} (known: {', '.join(BY_CODE)})", "code")
    if enabled is not None and not isinstance(enabled, bool):
        raise UserError("INVALID_ENABLED", "enabled must be true or false", "enabled")
    if weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT
    ):
        raise UserError("INVALID_WEIGHT", f"weight must be a whole number from 0 to {MAX_WEIGHT}", "weight")
    if params is not None and not isinstance(params, dict):
        raise UserError("INVALID_PARAMS", "params must be an object", "params")
    unknown = sorted(set(params or {}) - set(rule.schema))
    if unknown:
        raise UserError("INVALID_PARAMS", f"unknown params for {code}: {', '.join(unknown)}", "params")
    row = await session.get(AuditRule, code, with_for_update=True)
    current = _setting(rule, row)
    cleaned = {k: rule.schema[k](k, v) for k, v in (params or {}).items()}
    values = {
        "enabled": current.enabled if enabled is None else enabled,
        "weight": current.weight if weight is None else weight,
        "params": {**current.params, **cleaned},
    }
    await session.execute(
        insert(AuditRule)
        .values(code=code, **values)
        .on_conflict_do_update(index_elements=["code"], set_=values)
    )
    return RuleSetting(code, values["enabled"], values["weight"], values["params"], rule.description)


async def add_blacklist(
    session: AsyncSession, tenant_id: int, kind: str, value: str | Mapping[str, Any], reason: str = ""
) -> BlacklistEntry:
    """Blacklist a phone, e-mail, buyer (``platform:id``) or address; only its hash is stored."""
    if kind not in BLACKLIST_KINDS:
        raise UserError("INVALID_KIND", f"kind must be one of {', '.join(BLACKLIST_KINDS)}", "kind")
    if kind == "phone":
        normalised = identity.normalise_phone(value if isinstance(value, str) else None)
    elif kind == "email":
        normalised = identity.normalise_email(value if isinstance(value, str) else None)
    elif kind == "buyer":
        ok = isinstance(value, str) and ":" in value and all(p.strip() for p in value.split(":", 1))
        normalised = value.strip() if ok else None
    else:
        normalised = checks.address_value(value) if isinstance(value, str | Mapping) else None
    if not normalised:
        hint = " (as platform:id)" if kind == "buyer" else ""
        raise UserError("INVALID_VALUE", f"not a valid {kind}{hint}", "value")
    reason = (reason or "").strip()[:300]
    value_hash = identity.tenant_hash(tenant_id, kind, normalised)
    entry_id = await session.scalar(
        insert(BlacklistEntry)
        .values(kind=kind, value_hash=value_hash, reason=reason)
        .on_conflict_do_update(index_elements=["kind", "value_hash"], set_={"reason": reason})
        .returning(BlacklistEntry.id)
    )
    return await session.get(BlacklistEntry, entry_id, populate_existing=True)


async def remove_blacklist(session: AsyncSession, entry_id: int) -> None:
    entry = await session.get(BlacklistEntry, entry_id)
    if entry is None:
        raise NotFound("blacklist entry")
    await session.delete(entry)
    await session.flush()


# --- evaluation -----------------------------------------------------------------------------------------


async def evaluate(session: AsyncSession, order: Order) -> list[Finding]:
    """Every enabled rule that fires for ``order`` (heaviest first)."""
    return await _evaluate(session, order, {s.code: s for s in await rules(session)})


async def _evaluate(session: AsyncSession, order: Order, settings: dict[str, RuleSetting]) -> list[Finding]:
    lines = list((await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all())
    ctx = checks.Ctx(session, order, lines, session_tenant(session).id)
    findings: list[Finding] = []
    for rule in RULES:
        setting = settings[rule.code]
        if rule.check is None or not setting.enabled:
            continue
        reason = await rule.check(ctx, setting.params)
        if reason:
            findings.append(Finding(rule.code, setting.weight, reason[:500]))
    return sorted(findings, key=lambda f: -f.weight)


async def holds(session: AsyncSession, order: Order) -> list[Finding]:
    """The findings to hold ``order`` for: all that fired when their weights reach the threshold
    (by default: any finding of weight > 0), else none."""
    settings = {s.code: s for s in await rules(session)}
    findings = await _evaluate(session, order, settings)
    threshold = settings[THRESHOLD]
    minimum = threshold.params["min_weight"] if threshold.enabled else 1
    return findings if sum(f.weight for f in findings) >= minimum else []
