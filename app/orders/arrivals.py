"""Channel webhook arrivals: each payload is checked against its channel's secret and stored in the inbox
before anything parses it, as ``received`` or, when it fails authentication, as ``rejected`` with why.

Arrivals for one tenant that come while a store for that tenant runs are stored together next
(``app.coalesce``): one transaction reads their channels and inserts every row. A busy webhook door so
costs a share of one transaction per request instead of two of its own. Secrets are read fresh by every
group, never cached, so a rotated secret or a deactivated channel counts from the next group on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import any_, select

from app import inbox, signing
from app.channels.adapters import UnknownPlatformError, get_adapter
from app.channels.adapters.base import header
from app.channels.models import Channel
from app.coalesce import Coalescer
from app.db import Database, TenantRef
from app.inventory import arrays

GROUP_LIMIT = 500  # payloads per store transaction


@dataclass(frozen=True)
class Arrival:
    """A stored payload: ``problem`` says why it was refused (``code`` is the HTTP answer for that), or
    is None when it was stored to be processed; ``headers`` are as stored (what processing reads)."""

    inbox_id: int
    headers: dict[str, str]
    active: bool
    problem: str | None = None
    code: int = 200


def signature_problem(
    platform: str, secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> str | None:
    """Why the request is not authentic, or None when it is: the platform's own scheme when the request
    carries its header (e.g. Shopify's ``X-Shopify-Hmac-Sha256``), else ``X-OMS-Signature``."""
    try:
        adapter = get_adapter(platform)
    except UnknownPlatformError:
        adapter = None
    if adapter is not None and adapter.signature_header and header(headers, adapter.signature_header):
        if adapter.verify_signature(headers, body, secret):
            return None
        return f"{adapter.signature_header} does not match the body"
    return signing.signature_problem(secret, headers, body, now)


def channel_source(channel_id: int) -> str:
    return f"channel:{channel_id}"


async def arrive(
    db: Database, tenant: TenantRef, channel_id: int, body: bytes, headers: Mapping[str, str]
) -> Arrival:
    """Authenticate and store one webhook payload (in a group with its tenant's concurrent ones)."""
    return await _groups.submit((db, tenant), (channel_id, body, dict(headers)))


async def _store_group(
    key: tuple[Database, TenantRef], items: list[tuple[int, bytes, dict[str, str]]]
) -> list[Arrival]:
    db, tenant = key
    async with db.tenant_session(tenant) as session:
        wanted = {channel_id for channel_id, _, _ in items}
        facts = {
            row.id: row
            for row in await session.execute(
                select(Channel.id, Channel.platform, Channel.webhook_secret, Channel.active).where(
                    Channel.id == any_(arrays.ids(wanted))
                )
            )
        }
        verdicts: list[tuple[str | None, int, bool]] = []
        for channel_id, body, headers in items:
            channel = facts.get(channel_id)
            if channel is None:
                verdicts.append(("unknown channel", 404, False))
                continue
            problem = signature_problem(channel.platform, channel.webhook_secret, headers, body)
            # An inactive channel answers 404 either way: it takes no orders.
            verdicts.append((problem, 401 if channel.active else 404, channel.active))
        rows = [
            inbox.row(
                source=channel_source(channel_id),
                body=body,
                headers=headers,
                tenant_id=tenant.id,
                status=inbox.InboxStatus.rejected if problem else inbox.InboxStatus.received,
                error=problem,
            )
            for (channel_id, body, headers), (problem, _, _) in zip(items, verdicts, strict=True)
        ]
        ids = await inbox.store_many(session, rows)
    return [
        Arrival(inbox_id, row["headers"], active, problem, code if problem else 200)
        for inbox_id, row, (problem, code, active) in zip(ids, rows, verdicts, strict=True)
    ]


_groups: Coalescer[tuple[int, bytes, dict[str, str]], Arrival] = Coalescer(_store_group, GROUP_LIMIT)
