"""The inbox sweep: channel payloads stored but never processed are replayed.

A webhook payload is committed to the inbox before it is ingested. If the API process dies in between
(a deploy, a crash, or a webhook answered at ``?ack=stored`` whose background ingest was lost), the row
stays ``received``. Every minute (arq cron ``inbox_sweep``, see ``app.worker``) rows older than STALE are
replayed through ``inbox_replay.replay``, the operators' path: ingest is idempotent, so a row whose
sender also re-delivered it makes one order. Only channel payloads: a CSV import may legitimately run
for minutes, and its file is replayed by the operator who started it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.db import Database
from app.inbox import InboxMessage, InboxStatus
from app.orders import inbox_replay

log = logging.getLogger(__name__)
STALE = timedelta(minutes=2)  # well past any ingest still running in an API process
BATCH = 500  # per minute; the rest waits for the next one


async def replay_stale(db: Database, *, now: datetime | None = None) -> Counter:
    """Replay stale ``received`` channel payloads, each in its own tenant; counts outcomes by inbox
    status (``error`` for one that raised). ``now``: a test's clock; default the database's."""
    cutoff = (now if now is not None else func.now()) - STALE
    async with db.control_session() as session:
        rows = (
            await session.execute(
                select(InboxMessage.id, InboxMessage.tenant_id)
                .where(
                    InboxMessage.status == InboxStatus.received,
                    InboxMessage.source.startswith("channel:"),
                    InboxMessage.tenant_id.is_not(None),
                    InboxMessage.received_at <= cutoff,
                )
                .order_by(InboxMessage.id)
                .limit(BATCH)
            )
        ).all()
    outcomes: Counter = Counter()
    for inbox_id, tenant_id in rows:
        try:
            result = await inbox_replay.replay(db, tenant_id, inbox_id, actor="inbox_sweep")
            outcomes[result.status] += 1
        except Exception:  # one bad row (e.g. its tenant was dropped) does not stop the others
            log.exception("inbox sweep: replay of row %s (tenant %s) failed", inbox_id, tenant_id)
            outcomes["error"] += 1
    return outcomes
