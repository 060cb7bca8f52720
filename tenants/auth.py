"""Who is calling: turn a credential (JWT or API key) into a Principal bound to exactly one tenant.

The tenant of every request comes from here and nowhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.sql import func

from app.db import Database, TenantRef
from tenants.models import ApiKey, Membership, Role, Tenant, TenantStatus
from tenants.security import InvalidToken, api_key_matches, decode_access_token, split_api_key

READ_SCOPES = ("tenant:read", "orders:read", "inventory:read", "catalog:read", "finance:read")
WRITE_SCOPES = ("orders:write", "inventory:write", "catalog:write", "finance:write")
ADMIN_SCOPES = ("tenant:admin",)
ALL_SCOPES = READ_SCOPES + WRITE_SCOPES + ADMIN_SCOPES

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.owner: frozenset(ALL_SCOPES),
    Role.admin: frozenset(ALL_SCOPES),
    Role.operator: frozenset(
        (
            "tenant:read",
            "orders:read",
            "orders:write",
            "inventory:read",
            "inventory:write",
            "catalog:read",
            "catalog:write",
        )
    ),
    Role.finance: frozenset(("tenant:read", "orders:read", "finance:read", "finance:write")),
    Role.viewer: frozenset(READ_SCOPES),
}


@dataclass(frozen=True)
class Principal:
    tenant: TenantRef
    scopes: frozenset[str]
    user_id: int | None = None
    api_key_id: int | None = None
    role: str | None = None
    slug: str = ""

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else f"api_key:{self.api_key_id}"


@dataclass
class _TenantCache:
    """Tenant id -> (ref, slug, active) for a few seconds: saves a control query per request."""

    ttl_s: float = 10.0
    entries: dict[int, tuple[float, TenantRef, str, bool]] = field(default_factory=dict)

    async def get(self, db: Database, tenant_id: int) -> tuple[TenantRef, str, bool] | None:
        hit = self.entries.get(tenant_id)
        if hit and hit[0] > time.monotonic():
            return hit[1], hit[2], hit[3]
        async with db.control_session() as session:
            row = (
                await session.execute(
                    select(Tenant.schema_name, Tenant.slug, Tenant.status).where(Tenant.id == tenant_id)
                )
            ).first()
        if row is None:
            self.entries.pop(tenant_id, None)
            return None
        ref = TenantRef(tenant_id, row.schema_name)
        active = row.status is not TenantStatus.suspended
        self.entries[tenant_id] = (time.monotonic() + self.ttl_s, ref, row.slug, active)
        return ref, row.slug, active

    def forget(self, tenant_id: int) -> None:
        self.entries.pop(tenant_id, None)


tenant_cache = _TenantCache()


async def _tenant(db: Database, tenant_id: int) -> tuple[TenantRef, str]:
    found = await tenant_cache.get(db, tenant_id)
    if found is None or not found[2]:
        raise InvalidToken("tenant not found or suspended")
    return found[0], found[1]


async def principal_from_jwt(db: Database, token: str) -> Principal:
    claims = decode_access_token(token)
    ref, slug = await _tenant(db, claims.tenant_id)
    # The role is re-read so a removed member loses access before the token expires.
    async with db.control_session() as session:
        role = await session.scalar(
            select(Membership.role).where(
                Membership.tenant_id == claims.tenant_id, Membership.user_id == claims.user_id
            )
        )
    if role is None:
        raise InvalidToken("membership revoked")
    return Principal(ref, ROLE_SCOPES[role], user_id=claims.user_id, role=role.value, slug=slug)


# last_used_at is written at most once a minute per key, not on every request.
_LAST_USED_EVERY_S = 60.0
_last_used_written: dict[int, float] = {}


async def principal_from_api_key(db: Database, key: str) -> Principal:
    parts = split_api_key(key)
    if parts is None:
        raise InvalidToken("malformed API key")
    prefix, secret = parts
    async with db.control_session() as session:
        row = (
            await session.execute(
                select(
                    ApiKey.id, ApiKey.tenant_id, ApiKey.secret_hash, ApiKey.scopes, ApiKey.revoked_at
                ).where(ApiKey.prefix == prefix)
            )
        ).first()
        if row is None or not api_key_matches(secret, row.secret_hash) or row.revoked_at is not None:
            raise InvalidToken("unknown or revoked API key")
        now = time.monotonic()
        if now - _last_used_written.get(row.id, 0.0) > _LAST_USED_EVERY_S:
            _last_used_written[row.id] = now
            await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=func.now()))
    ref, slug = await _tenant(db, row.tenant_id)
    return Principal(ref, frozenset(row.scopes), api_key_id=row.id, slug=slug)


async def authenticate(
    db: Database, authorization: str | None, api_key: str | None = None
) -> Principal | None:
    """None when no credential was sent; InvalidToken when one was sent and is bad."""
    if api_key:
        return await principal_from_api_key(db, api_key)
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise InvalidToken("expected 'Authorization: Bearer <token>'")
    value = value.strip()
    if value.startswith("oms_"):
        return await principal_from_api_key(db, value)
    return await principal_from_jwt(db, value)
