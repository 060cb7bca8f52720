"""Automation settings: what to do some minutes after an order enters a status (``Automation``).

Validated here as the job that applies them (``service.run_automation``) expects: an action the state
machine allows from that status, a hold code only with ``release``, a delay in whole minutes. An update
is checked as a whole (the row with the changes applied), so no mix of old and new values slips through.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound, UserError
from app.orders import states
from app.orders.models import Automation, OrderStatus

AUTOMATION_ACTIONS = ("cancel", "release")
MAX_AUTOMATION_MINUTES = 60 * 24 * 30
SETTINGS = ("name", "on_status", "action", "after_minutes", "hold_code")


def validated(
    name: str, on_status: str, action: str, after_minutes: int, hold_code: str | None
) -> dict[str, Any]:
    """The settings, cleaned, or a UserError naming the (GraphQL) field that is wrong."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise UserError("INVALID_NAME", "a name is 1-100 characters", "name")
    try:
        status = OrderStatus(on_status)
    except ValueError:
        raise UserError("INVALID_STATUS", f"{on_status!r} is not an order status", "onStatus") from None
    if action not in AUTOMATION_ACTIONS:
        raise UserError("INVALID_ACTION", f"action must be one of {', '.join(AUTOMATION_ACTIONS)}", "action")
    if action == "cancel" and OrderStatus.cancelled not in states.TRANSITIONS[status]:
        raise UserError("INVALID_STATUS", f"an order that is {status.value} cannot be cancelled", "onStatus")
    if action == "release" and status is not OrderStatus.on_hold:
        raise UserError("INVALID_STATUS", "only orders on hold can have their holds released", "onStatus")
    if hold_code is not None:
        hold_code = hold_code.strip()
        if action != "release" or not hold_code or len(hold_code) > 40:
            raise UserError(
                "INVALID_HOLD_CODE", "a hold code (1-40 characters) goes with release", "holdCode"
            )
    if isinstance(after_minutes, bool) or not isinstance(after_minutes, int):
        raise UserError("INVALID_DELAY", "after_minutes must be a whole number", "afterMinutes")
    if not 0 <= after_minutes <= MAX_AUTOMATION_MINUTES:
        raise UserError(
            "INVALID_DELAY", f"after_minutes must be from 0 to {MAX_AUTOMATION_MINUTES}", "afterMinutes"
        )
    return {
        "name": name,
        "on_status": status.value,
        "action": action,
        "after_minutes": after_minutes,
        "hold_code": hold_code,
    }


async def create_automation(
    session: AsyncSession,
    name: str,
    on_status: str,
    action: str,
    after_minutes: int,
    hold_code: str | None = None,
    *,
    enabled: bool = True,
) -> Automation:
    """An action run ``after_minutes`` after an order enters ``on_status``: cancel (where the state
    machine allows it) or release holds (of ``hold_code``, or all) of orders on hold."""
    row = Automation(**validated(name, on_status, action, after_minutes, hold_code), enabled=bool(enabled))
    session.add(row)
    await session.flush()
    return row


async def _get(session: AsyncSession, automation_id: int) -> Automation:
    row = await session.scalar(select(Automation).where(Automation.id == automation_id).with_for_update())
    if row is None:
        raise NotFound("automation")
    return row


async def update_automation(session: AsyncSession, automation_id: int, changes: dict[str, Any]) -> Automation:
    """Apply ``changes`` (keys of ``SETTINGS`` and ``enabled``). Jobs already scheduled read the row
    when they run: a paused automation does nothing, a changed one acts as it now says."""
    row = await _get(session, automation_id)
    settings = {key: changes.get(key, getattr(row, key)) for key in SETTINGS}
    for key, value in validated(**settings).items():
        setattr(row, key, value)
    if "enabled" in changes:
        row.enabled = bool(changes["enabled"])
    await session.flush()
    return row


async def set_automation_enabled(session: AsyncSession, automation_id: int, enabled: bool) -> Automation:
    """Pause or resume; jobs already scheduled by a paused automation do nothing when they run."""
    return await update_automation(session, automation_id, {"enabled": enabled})


async def delete_automation(session: AsyncSession, automation_id: int) -> None:
    await session.delete(await _get(session, automation_id))
    await session.flush()


async def list_automations(session: AsyncSession) -> list[Automation]:
    return list((await session.scalars(select(Automation).order_by(Automation.id))).all())
