"""The fulfilment callback door: ``POST /webhooks/fulfilment/<location global id>``.

The location id in the URL only says where the callback claims to come from; the signature made with
*that location's* connector secret is what authenticates it (and with it the tenant). Authentic payloads
are stored *before* they are parsed, then marked processed or failed (with the error) in the same
transaction as the changes they cause, or in one of their own when those roll back; one for an inactive
connector is kept as ``rejected`` (404, saying so). A bad signature for a location with an active
connector is kept as ``rejected`` (401) within the sender's budget (``app.rejections``; past it 429,
nothing kept). Every id that reaches no connector — not a location id, an unknown or suspended tenant,
an unknown location, one without a connector, or an inactive connector without a valid signature —
gets one and the same 404, byte for byte, and nothing is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app import rejections, signing
from app.db import Database, TenantRef, is_transient
from app.errors import UserError
from app.fulfillment import callbacks, connectors
from app.fulfillment.models import LocationConnector
from app.inbox import InboxStatus, mark
from app.inbox import store as inbox_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    code: int
    body: dict[str, Any]
    retry_after: int | None = None  # with a 429: the sender is past its budget of refused payloads


def source(location_id: int) -> str:
    return f"fulfilment:{location_id}"


def _answer(code: int, inbox_id: int | None, status: str, error: str | None = None, fo=None) -> Answer:
    return Answer(code, {"inboxId": inbox_id, "status": status, "fulfillmentOrder": fo, "error": error})


UNKNOWN = _answer(404, None, "rejected", "unknown location")  # the same for every id reaching no connector
INACTIVE = "the location's connector is inactive"


async def _store(db: Database, tenant_id: int, location_id: int, body: bytes, headers, **kw) -> int:
    async with db.control_session() as session:
        msg = await inbox_store(
            session, source=source(location_id), body=body, headers=dict(headers), tenant_id=tenant_id, **kw
        )
        return msg.id


async def receive(
    db: Database, location_gid: str, body: bytes, headers: Mapping[str, str], address: str = ""
) -> Answer:
    """Authenticate, store, apply. Never raises for the sender's mistakes: they come back as an Answer.
    ``address`` is the sender's, for its budget of refused payloads."""
    from tenants.auth import tenant_cache

    ids = connectors.parse_global_id(location_gid, "Location")
    if ids is None:
        return UNKNOWN
    tenant_id, location_id = ids
    found = await tenant_cache.get(db, tenant_id)
    if found is None or not found[2]:  # no tenant, or a suspended one
        return UNKNOWN
    ref = found[0]
    async with db.tenant_session(ref) as session:
        connector = await session.get(LocationConnector, location_id)
        secret, active = (connector.secret, connector.active) if connector is not None else (None, False)
    if secret is None:
        return UNKNOWN
    problem = signing.signature_problem(secret, headers, body)
    if problem is None and active:
        inbox_id = await _store(db, tenant_id, location_id, body, headers)
        return await process(db, ref, location_id, inbox_id, body)
    if not active and problem is not None:  # the sender proved nothing: as if there were no connector
        return UNKNOWN
    if problem is not None:
        wait = await rejections.retry_after("fulfilment", tenant_id, location_id, address)
        if wait is not None:
            return Answer(429, {}, wait)
    error, code = (problem, 401) if problem is not None else (INACTIVE, 404)  # a signed one is kept
    inbox_id = await _store(
        db, tenant_id, location_id, body, headers, status=InboxStatus.rejected, error=error
    )
    return _answer(code, inbox_id, "rejected", error)


async def process(db: Database, ref: TenantRef, location_id: int, inbox_id: int, body: bytes) -> Answer:
    """Apply a stored, authentic callback and mark its inbox row (also what a replay would call)."""
    error, code = "internal error; the payload is stored", 500
    for attempt in range(3):
        try:
            async with db.tenant_session(ref) as session:
                cb = connectors.parse_callback(body, ref.id)
                fo = await callbacks.apply_callback(session, location_id, cb)
                await mark(session, inbox_id, InboxStatus.processed)
                shown = {
                    "id": connectors.global_id("FulfillmentOrder", ref.id, fo.id),
                    "status": fo.status.value,
                }
            return _answer(200, inbox_id, "processed", fo=shown)
        except UserError as exc:
            error, code = exc.message, 404 if exc.code == "NOT_FOUND" else 422
            break
        except Exception as exc:
            if attempt < 2 and is_transient(exc):
                continue
            log.exception("fulfilment callback (inbox %s) failed", inbox_id)
            error = f"internal error: {type(exc).__name__}: {exc}"[:2000]
            break
    async with db.control_session() as session:
        await mark(session, inbox_id, InboxStatus.failed, error)
    return _answer(
        code, inbox_id, "failed", error if code != 500 else "internal error; the payload is stored"
    )
