"""Members of a tenant: invitations by email with a role, accepting them, changing roles, removing.

Managing members needs the ``tenant:admin`` scope (the API checks it); on top of that only an owner
may grant the owner role or touch an owner (their role, their removal, their invitation), and a tenant
never loses its last owner. An API key with ``tenant:admin`` manages members as an admin would, never
as an owner. Every change first locks the tenant's row, so two concurrent demotions cannot each see
"another owner remains" and leave none.

There is no mail sender: ``invite`` returns the token once and the inviter delivers it (the console
builds the link). Only the token's sha256 is stored.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.db import Database, TenantRef
from app.errors import NotFound, UserError
from tenants import ratelimit
from tenants.models import Invitation, Membership, RefreshToken, Role, Tenant, User
from tenants.security import hash_password, sha256_hex, verify_password
from tenants.service import Tokens, issue_tokens, validate_email, validate_password

TOKEN_PREFIX = "inv_"
MAX_PENDING = 100  # live invitations per tenant: an inviter cannot mint tokens without end


@dataclass(frozen=True)
class Manager:
    """Who is managing members: a signed-in user with their role, or an API key (role None)."""

    tenant_id: int
    user_id: int | None
    role: Role | None

    def may_touch(self, *roles: Role, field: str) -> None:
        if Role.owner in roles and self.role is not Role.owner:
            raise UserError(
                "OWNER_REQUIRED", "only an owner can grant the owner role or change an owner", field
            )


def status_of(row: Invitation, now: datetime | None = None) -> str:
    if row.accepted_at is not None:
        return "accepted"
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= (now or datetime.now(UTC)) else "pending"


def _pending(tenant_id: int):
    return (
        Invitation.tenant_id == tenant_id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > func.now(),
    )


def members_query(tenant_id: int) -> Select:
    return select(Membership).where(Membership.tenant_id == tenant_id)


def invitations_query(tenant_id: int, *, include_closed: bool = False) -> Select:
    """Pending invitations (or all of them), for the caller to paginate."""
    if include_closed:
        return select(Invitation).where(Invitation.tenant_id == tenant_id)
    return select(Invitation).where(*_pending(tenant_id))


async def _lock_tenant(session: AsyncSession, tenant_id: int) -> None:
    # NO KEY UPDATE: serialises member changes without blocking rows that merely reference the tenant.
    await session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True))


async def _member_of(session: AsyncSession, tenant_id: int, membership_id: int) -> tuple[Membership, str]:
    found = (
        await session.execute(
            select(Membership, User.email)
            .join(User, User.id == Membership.user_id)
            .where(Membership.id == membership_id, Membership.tenant_id == tenant_id)
            .with_for_update(of=Membership)
        )
    ).first()
    if found is None:
        raise NotFound("member")
    return found[0], found[1]


async def _keep_an_owner(session: AsyncSession, member: Membership) -> None:
    """Refuse when ``member`` is the tenant's only owner (it is about to stop being one)."""
    if member.role is not Role.owner:
        return
    others = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.tenant_id == member.tenant_id,
            Membership.role == Role.owner,
            Membership.id != member.id,
        )
    )
    if not others:
        raise UserError("LAST_OWNER", "a tenant needs an owner: make someone else owner first", "id")


async def invite(
    session: AsyncSession, manager: Manager, *, email: str, role: Role
) -> tuple[Invitation, str]:
    """A new invitation and its token (returned here only). A live invitation to the same address is
    revoked and replaced, so inviting again re-sends a lost link."""
    email = validate_email(email)
    manager.may_touch(role, field="role")
    await _lock_tenant(session, manager.tenant_id)
    member = await session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == manager.tenant_id, User.email == email)
    )
    if member is not None:
        raise UserError("ALREADY_MEMBER", "this address is already a member of the tenant", "email")
    previous = await session.scalar(
        select(Invitation).where(*_pending(manager.tenant_id), Invitation.email == email)
    )
    if previous is not None:
        manager.may_touch(previous.role, field="email")
        previous.revoked_at = datetime.now(UTC)
    live = await session.scalar(
        select(func.count()).select_from(Invitation).where(*_pending(manager.tenant_id))
    )
    if live >= MAX_PENDING:
        raise UserError("TOO_MANY_INVITATIONS", f"at most {MAX_PENDING} pending invitations; revoke some")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = Invitation(
        tenant_id=manager.tenant_id,
        email=email,
        role=role,
        token_hash=sha256_hex(token),
        invited_by=manager.user_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=get_settings().invitation_ttl_s),
    )
    session.add(row)
    await session.flush()
    return row, token


async def revoke(session: AsyncSession, manager: Manager, invitation_id: int) -> tuple[Invitation, bool]:
    """The invitation, and whether this call revoked it (revoking twice changes nothing)."""
    await _lock_tenant(session, manager.tenant_id)
    row = await session.scalar(
        select(Invitation).where(Invitation.id == invitation_id, Invitation.tenant_id == manager.tenant_id)
    )
    if row is None:
        raise NotFound("invitation")
    manager.may_touch(row.role, field="id")
    if row.accepted_at is not None:
        raise UserError("INVITATION_USED", "this invitation was already accepted", "id")
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = datetime.now(UTC)
    return row, True


async def change_role(
    session: AsyncSession, manager: Manager, membership_id: int, role: Role
) -> tuple[Membership, Role, str]:
    """Returns the member, their previous role and their email. Takes effect on their next request."""
    await _lock_tenant(session, manager.tenant_id)
    member, email = await _member_of(session, manager.tenant_id, membership_id)
    manager.may_touch(member.role, role, field="role")
    previous = member.role
    if role is not Role.owner:
        await _keep_an_owner(session, member)
    member.role = role
    return member, previous, email


async def remove(session: AsyncSession, manager: Manager, membership_id: int) -> tuple[Membership, str]:
    """Delete the membership (a member may remove themselves) and revoke their refresh tokens for
    this tenant; their access tokens stop working on the next request (the role is re-read)."""
    await _lock_tenant(session, manager.tenant_id)
    member, email = await _member_of(session, manager.tenant_id, membership_id)
    manager.may_touch(member.role, field="id")
    await _keep_an_owner(session, member)
    await session.execute(delete(Membership).where(Membership.id == member.id))
    await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.user_id == member.user_id,
            RefreshToken.tenant_id == member.tenant_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
    )
    return member, email


# ---- accepting -------------------------------------------------------------------------------------

_CLOSED = {
    "accepted": ("INVITATION_USED", "this invitation was already accepted"),
    "revoked": ("INVITATION_REVOKED", "this invitation was revoked; ask for a new one"),
    "expired": ("INVITATION_EXPIRED", "this invitation has expired; ask for a new one"),
}


def _invalid() -> UserError:
    return UserError("INVALID_INVITATION", "this invitation token is not valid", "token")


async def tenant_of(db: Database, redis, token: str, ip: str) -> TenantRef:
    """The tenant an invitation token is for: where ``accept`` must run. Refusals spend the
    address's failed sign-in budget, like a failed login."""
    await ratelimit.check_address(redis, ip)
    async with db.control_session() as session:
        found = (
            await session.execute(
                select(Tenant.id, Tenant.schema_name)
                .join(Invitation, Invitation.tenant_id == Tenant.id)
                .where(Invitation.token_hash == sha256_hex(token))
            )
        ).first()
    if found is None:
        await ratelimit.record_address_failure(redis, ip)
        raise _invalid()
    return TenantRef(found.id, found.schema_name)


@dataclass(frozen=True)
class Joined:
    invitation: Invitation
    membership: Membership
    email: str
    new_account: bool
    tokens: Tokens


async def accept(
    session: AsyncSession,
    redis,
    *,
    token: str,
    password: str | None,
    name: str,
    signed_in_user: int | None,
    ip: str,
) -> Joined:
    """Take up an invitation (once): the account with its email joins with its role and comes back
    signed in to the tenant. The account is proved by a signed-in session of that very user or its
    password; an address with no account gets one (the signup password rule)."""
    row = await session.scalar(
        select(Invitation).where(Invitation.token_hash == sha256_hex(token)).with_for_update()
    )
    if row is None:
        await ratelimit.record_address_failure(redis, ip)
        raise _invalid()
    if (closed := _CLOSED.get(status_of(row))) is not None:
        await ratelimit.record_address_failure(redis, ip)
        raise UserError(*closed, "token")
    user = await session.scalar(select(User).where(User.email == row.email))
    new_account = False
    if signed_in_user is not None:
        if user is None or user.id != signed_in_user:
            raise UserError(
                "EMAIL_MISMATCH", "this invitation is for another address; sign out or sign in as it", "token"
            )
    elif user is not None:
        await _prove_password(redis, user, password, ip)
    else:
        user = await _new_account(session, row.email, password, name)
        new_account = True
    if await session.scalar(
        select(Membership.id).where(Membership.tenant_id == row.tenant_id, Membership.user_id == user.id)
    ):
        raise UserError("ALREADY_MEMBER", "you are already a member of this tenant", "token")
    membership = Membership(tenant_id=row.tenant_id, user_id=user.id, role=row.role)
    session.add(membership)
    row.accepted_at, row.accepted_by = datetime.now(UTC), user.id
    await session.flush()
    tokens = await issue_tokens(session, user.id, row.tenant_id, row.role, secrets.token_hex(16))
    return Joined(row, membership, row.email, new_account, tokens)


async def _prove_password(redis, user: User, password: str | None, ip: str) -> None:
    if not password:
        raise UserError(
            "SIGN_IN_REQUIRED",
            "an account with this address exists: sign in, or give its password, to accept",
            "password",
        )
    await ratelimit.check_login(redis, user.email, ip)
    if not await verify_password(user.password_hash, password):
        await ratelimit.record_login_failure(redis, user.email, ip)
        raise UserError("INVALID_CREDENTIALS", "email or password is incorrect", "password")
    await ratelimit.clear_login(redis, user.email, ip)


async def _new_account(session: AsyncSession, email: str, password: str | None, name: str) -> User:
    validate_password(password or "")
    user = User(email=email, name=name.strip()[:200], password_hash=await hash_password(password))
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:  # the address signed up between our look-up and now
        raise UserError(
            "EMAIL_TAKEN", "an account with this address was just created; accept again", "password"
        ) from None
    return user
