"""The fulfilment callback door: ``POST /webhooks/fulfilment/<location global id>``.

The location id in the URL only says where the callback claims to come from; the signature made with
*that location's* connector secret is what authenticates it (and with it the tenant). Every payload is
kept in the inbox: refused ones as ``rejected`` (401 bad signature, 404 unknown location or no active
connector), authentic ones stored *before* they are parsed, then marked processed or failed (with the
error) in the same transaction as the changes they cause, or in one of their own when those roll back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app import signing
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


def source(location_id: int) -> str:
    return f"fulfilment:{location_id}"


def _answer(code: int, inbox_id: int | None, status: str, error: str | None = None, fo=None) -> Answer:
    return Answer(code, {"inboxId": inbox_id, "status": status, "fulfillmentOrder": fo, "error": error})


async def _store(db: Database, tenant_id: int, location_id: int, body: bytes, headers, **kw) -> int:
    async with db.control_session() as session:
        msg = await inbox_store(
            session, source=source(location_id), body=body, headers=dict(headers), tenant_id=tenant_id, **kw
        )
        return msg.id


async def receive(db: Database, location_gid: str, body: bytes, headers: Mapping[str, str]) -> Answer:
    """Authenticate, store, apply. Never raises for the sender's mistakes: they come back as an Answer."""
    from tenants.auth import tenant_cache

    ids = connectors.parse_global_id(location_gid, "Location")
    if ids is None:
        return _answer(404, None, "rejected", "unknown location")
    tenant_id, location_id = ids
    found = await tenant_cache.get(db, tenant_id)
    if found is None:
        return _answer(404, None, "rejected", "unknown location")
    ref, _, tenant_active = found

    async def rejected(error: str, code: int) -> Answer:
        inbox_id = await _store(
            db, tenant_id, location_id, body, headers, status=InboxStatus.rejected, error=error
        )
        return _answer(code, inbox_id, "rejected", error)

    if not tenant_active:
        return await rejected("the tenant is suspended", 404)
    async with db.tenant_session(ref) as session:
        connector = await session.get(LocationConnector, location_id)
        secret = connector.secret if connector is not None and connector.active else None
    if secret is None:
        return await rejected("no active connector for this location", 404)
    problem = signing.signature_problem(secret, headers, body)
    if problem is not None:
        return await rejected(problem, 401)
    inbox_id = await _store(db, tenant_id, location_id, body, headers)
    return await process(db, ref, location_id, inbox_id, body)


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
