"""Control-plane operations: signup/provisioning, login and tokens, API keys, tenant admin."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import func

from app.config import get_settings
from app.db import SLUG_RE, Database, TenantRef, quote_ident, schema_for_slug
from app.errors import NotFound, UserError
from app.migrate import upgrade_tenant
from app.outbox import enqueue
from tenants import ratelimit
from tenants.auth import ALL_SCOPES, tenant_cache
from tenants.models import ApiKey, Membership, Organization, RefreshToken, Role, Tenant, TenantStatus, User
from tenants.security import (
    hash_password,
    issue_access_token,
    new_api_key,
    new_refresh_token,
    sha256_hex,
    verify_password,
)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
RESERVED_SLUGS = {"control", "public", "admin", "api", "www", "system", "information_schema"}


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    tenant_id: int
    user_id: int


def normalise_email(email: str) -> str:
    return email.strip().lower()


def validate_slug(slug: str) -> str:
    valid = isinstance(slug, str) and SLUG_RE.fullmatch(slug) and not slug.startswith("pg_")
    if not valid or slug in RESERVED_SLUGS:
        raise UserError(
            "INVALID_SLUG",
            "slug must be 3-40 characters: a lower-case letter, then letters, digits or underscores",
            "slug",
        )
    return slug


def validate_email(email: str) -> str:
    """The address lower-cased, or INVALID_EMAIL."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise UserError("INVALID_EMAIL", "email address is not valid", "email")
    return email


def validate_password(password: str) -> None:
    """The one password rule (signup, accepting an invitation)."""
    if len(password) < MIN_PASSWORD or len(password) > 1024:
        raise UserError("WEAK_PASSWORD", f"password must be {MIN_PASSWORD} to 1024 characters", "password")


def _validate_credentials(email: str, password: str) -> str:
    email = validate_email(email)
    validate_password(password)
    return email


async def provision_tenant(session: AsyncSession, organization_id: int, slug: str, name: str) -> Tenant:
    """Create the tenant row and its schema, migrate it, and queue ``tenant.provisioned``.

    Runs in the caller's transaction: if anything fails, neither the row nor the schema exist.
    """
    validate_slug(slug)
    schema = schema_for_slug(slug)
    if await session.scalar(select(Tenant.id).where(Tenant.slug == slug)):
        raise UserError("SLUG_TAKEN", f"the slug {slug!r} is already taken", "slug")
    tenant = Tenant(
        organization_id=organization_id,
        slug=slug,
        name=name or slug,
        schema_name=schema,
        status=TenantStatus.active,
    )
    session.add(tenant)
    await session.flush()
    conn = await session.connection()
    await upgrade_tenant(conn, schema)
    await enqueue(session, "tenant_provisioned", tenant_id=tenant.id, schema_name=schema, slug=slug)
    return tenant


async def signup(
    db: Database,
    *,
    organization: str,
    tenant_name: str,
    slug: str,
    email: str,
    password: str,
    name: str = "",
    redis=None,
    ip: str | None = None,
) -> tuple[Tenant, Tokens]:
    """Organization + tenant + schema + owner, all or nothing; the owner comes back signed in.

    From the public API (``redis`` and ``ip`` given) signups are limited per address, and an answer
    that an email is taken spends the same per-address budget a failed sign-in does: signup cannot
    test more emails than login can. Operators (CLI, seed) pass neither."""
    validate_slug(slug)
    email = _validate_credentials(email, password)
    if redis is not None:
        await ratelimit.check_signup(redis, ip or "unknown")
    password_hash = await hash_password(password)
    try:
        async with db.control_session() as session:
            if await session.scalar(select(User.id).where(User.email == email)):
                if redis is not None:
                    await ratelimit.record_signup_failure(redis, ip or "unknown")
                raise UserError(
                    "EMAIL_TAKEN", "an account with this email already exists; sign in instead", "email"
                )
            org = Organization(name=(organization or tenant_name or slug).strip()[:200])
            session.add(org)
            await session.flush()
            tenant = await provision_tenant(session, org.id, slug, (tenant_name or slug).strip()[:200])
            user = User(email=email, name=name.strip()[:200], password_hash=password_hash)
            session.add(user)
            await session.flush()
            session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.owner))
            tokens = await issue_tokens(session, user.id, tenant.id, Role.owner, secrets.token_hex(16))
    except IntegrityError as exc:  # a concurrent signup won the race for the slug or the email
        field = "slug" if "slug" in str(exc.orig) or "schema" in str(exc.orig) else "email"
        raise UserError(f"{field.upper()}_TAKEN", f"that {field} is already taken", field) from None
    if redis is not None:
        await ratelimit.record_signup(redis, ip or "unknown")
    return tenant, tokens


async def issue_tokens(
    session: AsyncSession, user_id: int, tenant_id: int, role: Role, family: str
) -> Tokens:
    """Sign a user in to one tenant: an access token and a refresh token (its row added to ``session``)."""
    settings = get_settings()
    refresh = new_refresh_token()
    session.add(
        RefreshToken(
            token_hash=sha256_hex(refresh),
            family=family,
            user_id=user_id,
            tenant_id=tenant_id,
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    return Tokens(
        access_token=issue_access_token(user_id, tenant_id, role.value),
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_s,
        tenant_id=tenant_id,
        user_id=user_id,
    )


async def login(
    db: Database, redis, *, email: str, password: str, tenant_slug: str | None, ip: str
) -> Tokens:
    """Password sign-in into one of the user's tenants (the only one, or the slug given)."""
    email = normalise_email(email)
    await ratelimit.check_login(redis, email, ip)
    async with db.control_session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        if not await verify_password(user.password_hash if user else None, password):
            await ratelimit.record_login_failure(redis, email, ip)
            raise UserError("INVALID_CREDENTIALS", "email or password is incorrect")
        query = (
            select(Membership.tenant_id, Membership.role, Tenant.slug)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(Membership.user_id == user.id, Tenant.status != TenantStatus.suspended)
            .order_by(Membership.id)
        )
        if tenant_slug:
            query = query.where(Tenant.slug == tenant_slug)
        memberships = (await session.execute(query)).all()
        if not memberships:
            raise UserError("NO_TENANT", "this account has no access to that tenant", "tenant")
        if len(memberships) > 1 and not tenant_slug:
            slugs = ", ".join(m.slug for m in memberships)
            raise UserError("TENANT_REQUIRED", f"choose a tenant: {slugs}", "tenant")
        await ratelimit.clear_login(redis, email, ip)
        m = memberships[0]
        return await issue_tokens(session, user.id, m.tenant_id, m.role, secrets.token_hex(16))


async def refresh(db: Database, token: str) -> Tokens:
    """Rotate a refresh token. Presenting an already-used token revokes its whole family."""
    invalid = UserError(
        "INVALID_REFRESH_TOKEN", "refresh token is invalid or expired; sign in again", "refreshToken"
    )
    async with db.control_session() as session:
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(token)).with_for_update()
        )
        if row is None or row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
            raise invalid
        if row.used_at is None:
            role = await session.scalar(
                select(Membership.role).where(
                    Membership.tenant_id == row.tenant_id, Membership.user_id == row.user_id
                )
            )
            if role is None:
                raise invalid
            row.used_at = datetime.now(UTC)
            return await issue_tokens(session, row.user_id, row.tenant_id, role, row.family)
        # Reuse of a rotated token: someone else holds a copy. Revoke the family (committed), then refuse.
        await session.execute(
            update(RefreshToken).where(RefreshToken.family == row.family).values(revoked_at=func.now())
        )
    raise invalid


async def logout(db: Database, token: str) -> None:
    async with db.control_session() as session:
        family = await session.scalar(
            select(RefreshToken.family).where(RefreshToken.token_hash == sha256_hex(token))
        )
        if family:
            await session.execute(
                update(RefreshToken).where(RefreshToken.family == family).values(revoked_at=func.now())
            )


async def create_api_key(
    session: AsyncSession, tenant_id: int, *, name: str, scopes: list[str], created_by: int | None
) -> tuple[ApiKey, str]:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise UserError("INVALID_NAME", "name must be 1-200 characters", "name")
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        raise UserError(
            "INVALID_SCOPE",
            f"unknown scopes {unknown}; choose from {', '.join(ALL_SCOPES)}"
            if unknown
            else "give at least one scope",
            "scopes",
        )
    key, prefix, secret_hash = new_api_key()
    row = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=prefix,
        secret_hash=secret_hash,
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    session.add(row)
    await session.flush()
    return row, key


async def revoke_api_key(session: AsyncSession, tenant_id: int, key_id: int) -> ApiKey:
    row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if row is None:
        raise NotFound("API key")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


async def mark_ready(session: AsyncSession, tenant_id: int) -> None:
    await session.execute(
        update(Tenant).where(Tenant.id == tenant_id, Tenant.ready_at.is_(None)).values(ready_at=func.now())
    )


async def get_tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"tenant {slug!r}", "slug")
    return tenant


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.scalars(select(Tenant).order_by(Tenant.id))).all())


async def drop_tenant(db: Database, slug: str) -> None:
    """Delete the tenant row (cascading to memberships and keys) and drop its schema."""
    async with db.control_session() as session:
        tenant = await get_tenant(session, slug)
        schema = schema_for_slug(tenant.slug)  # derived again, never trusted from the row
        await session.execute(text(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE"))
        await session.execute(delete(Tenant).where(Tenant.id == tenant.id))
        orphan_orgs = select(Tenant.id).where(Tenant.organization_id == tenant.organization_id)
        if not (await session.execute(orphan_orgs.limit(1))).first():
            await session.execute(delete(Organization).where(Organization.id == tenant.organization_id))
    tenant_cache.forget(tenant.id)
    db.forget_tenant(schema)


def tenant_ref(tenant: Tenant) -> TenantRef:
    return TenantRef(tenant.id, tenant.schema_name)
