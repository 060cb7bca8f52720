"""Channel webhook arrivals: each payload is checked against its channel's secret and stored in the inbox
before anything parses it, as ``received`` or, when it fails authentication, as ``rejected`` with why.
A payload for a channel that does not exist, or for an inactive one without a valid signature, is not
stored at all (:data:`UNKNOWN`), and refused payloads are kept only within the sender's budget
(``app.rejections``); past it they are not stored either (429).

Arrivals for one tenant that come while a store for that tenant runs are stored together next
(``app.coalesce``): one transaction reads their channels and inserts every row. A busy webhook door so
costs a share of one transaction per request instead of two of its own. Secrets are read fresh by every
group, never cached, so a rotated secret or a deactivated channel counts from the next group on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import any_, select

from app import arrays, inbox, rejections, signing
from app.channels.adapters import UnknownPlatformError, get_adapter
from app.channels.adapters.base import header
from app.channels.models import Channel
from app.coalesce import Coalescer
from app.db import Database, TenantRef

GROUP_LIMIT = 500  # payloads per store transaction
UNKNOWN = "unknown channel"  # the problem of every payload that names no channel it can reach
_Item = tuple[int, bytes, dict[str, str], str]  # channel id, body, headers, sender's address


@dataclass(frozen=True)
class Arrival:
    """What became of a payload: ``problem`` says why it was refused (``code`` is the HTTP answer for
    that: 401 kept as rejected, 404 :data:`UNKNOWN` and 429 over budget not stored, so ``inbox_id`` is
    None), or is None when it was stored to be processed; ``headers`` are as stored (what processing
    reads); ``retry_after`` goes with a 429."""

    inbox_id: int | None
    headers: dict[str, str]
    active: bool
    problem: str | None = None
    code: int = 200
    retry_after: int | None = None

    @property
    def kept(self) -> bool:
        """Whether it goes into the inbox: authentic (200), or refused within the budget (401)."""
        return self.code in (200, 401)


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
    db: Database, tenant: TenantRef, channel_id: int, body: bytes, headers: Mapping[str, str], address: str
) -> Arrival:
    """Authenticate and store one webhook payload from ``address`` (in a group with its tenant's
    concurrent ones)."""
    return await _groups.submit((db, tenant), (channel_id, body, dict(headers), address))


async def _verdict(tenant_id: int, channel, item: _Item) -> Arrival:
    """The answer for one payload, before storing: whether it is kept, and how."""
    channel_id, body, headers, address = item
    if channel is None:
        return Arrival(None, headers, False, UNKNOWN, 404)
    problem = signature_problem(channel.platform, channel.webhook_secret, headers, body)
    if problem is None:  # authentic: stored, even for an inactive channel (replayed once it is active)
        return Arrival(None, headers, channel.active)
    if not channel.active:  # takes no orders and the sender proved nothing: as if it did not exist
        return Arrival(None, headers, False, UNKNOWN, 404)
    wait = await rejections.retry_after("channel", tenant_id, channel_id, address)
    if wait is not None:
        return Arrival(None, headers, True, "too many refused deliveries from this address", 429, wait)
    return Arrival(None, headers, True, problem, 401)


async def _store_group(key: tuple[Database, TenantRef], items: list[_Item]) -> list[Arrival]:
    db, tenant = key
    async with db.tenant_session(tenant) as session:
        wanted = {item[0] for item in items}
        facts = {
            row.id: row
            for row in await session.execute(
                select(Channel.id, Channel.platform, Channel.webhook_secret, Channel.active).where(
                    Channel.id == any_(arrays.ids(wanted))
                )
            )
        }
        verdicts = [await _verdict(tenant.id, facts.get(item[0]), item) for item in items]
        kept = [(item, v) for item, v in zip(items, verdicts, strict=True) if v.kept]
        rows = [
            inbox.row(
                source=channel_source(channel_id),
                body=body,
                headers=headers,
                tenant_id=tenant.id,
                status=inbox.InboxStatus.rejected if verdict.problem else inbox.InboxStatus.received,
                error=verdict.problem,
            )
            for (channel_id, body, headers, _), verdict in kept
        ]
        ids = iter(await inbox.store_many(session, rows) if rows else [])
        stored = iter(rows)
    return [
        replace(v, inbox_id=next(ids), headers=next(stored)["headers"]) if v.kept else v for v in verdicts
    ]


_groups: Coalescer[_Item, Arrival] = Coalescer(_store_group, GROUP_LIMIT)
