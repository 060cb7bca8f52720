"""Inbox: every raw inbound payload is stored here before anything parses it.

A payload that fails to parse or process stays here as ``failed`` with its error and can be replayed;
one that fails authentication is kept as ``rejected``. Nothing inbound is ever dropped.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    Identity,
    Integer,
    LargeBinary,
    String,
    Text,
    any_,
    func,
    insert,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app import arrays
from app.db import ControlBase


class InboxStatus(enum.StrEnum):
    received = "received"
    processed = "processed"
    failed = "failed"
    rejected = "rejected"


class InboxMessage(ControlBase):
    __tablename__ = "inbox"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    source: Mapped[str] = mapped_column(String(200))  # e.g. "channel:42", "fulfilment:7"
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[InboxStatus] = mapped_column(
        Enum(InboxStatus, name="inbox_status", schema="control"), default=InboxStatus.received, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Headers that must never be persisted in clear.
_SECRET_HEADERS = {"authorization", "cookie", "x-api-key"}


def row(
    *,
    source: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    tenant_id: int | None = None,
    status: InboxStatus = InboxStatus.received,
    error: str | None = None,
) -> dict[str, Any]:
    """An inbox row's values, its headers lower-cased and secrets redacted."""
    clean = {
        k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in (headers or {}).items()
    }
    return {
        "source": source,
        "body": body,
        "headers": clean,
        "tenant_id": tenant_id,
        "status": status,
        "error": error,
        "attempts": 0,
    }


async def store_many(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``row()`` values in one statement; their ids, in order."""
    statement = insert(InboxMessage).returning(InboxMessage.id, sort_by_parameter_order=True)
    return list((await session.scalars(statement, rows)).all())


async def store(session: AsyncSession, **values: Any) -> InboxMessage:
    """One payload (``row()``'s arguments), as an ORM object."""
    msg = InboxMessage(**row(**values))
    session.add(msg)
    await session.flush()
    return msg


async def mark_many(
    session: AsyncSession, inbox_ids: list[int], status: InboxStatus, error: str | None = None
) -> None:
    """Record an attempt's outcome on inbox rows (one, or a whole set-based ingest's)."""
    if inbox_ids:
        await session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == any_(arrays.ids(inbox_ids)))
            .values(
                status=status,
                error=error,
                attempts=InboxMessage.attempts + 1,
                processed_at=func.now() if status is InboxStatus.processed else None,
            )
        )


async def mark(session: AsyncSession, inbox_id: int, status: InboxStatus, error: str | None = None) -> None:
    await mark_many(session, [inbox_id], status, error)
