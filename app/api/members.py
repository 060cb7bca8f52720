"""GraphQL for a tenant's members: list them, invite by email with a role, accept, change, remove.

The rules (who may grant or touch the owner role, the last owner) live in ``tenants.members``; each
change is written to the tenant's activity log in the same transaction, here, because ``tenants/``
knows no tenant-schema domain.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.activity import service as activity
from app.api.errors import UserErrorType
from app.api.orders.common import actor_name
from app.api.permissions import requires
from app.api.relay import decode_node_id, load_nodes, paginate
from app.api.scopes import guarded_by
from app.api.tenants import AuthPayload, RoleEnum, TenantNode, UserInfo
from app.errors import NotFound, UserError
from tenants import members
from tenants.models import Invitation, Membership, Role, Tenant

ADMIN = requires("tenant:admin")


@guarded_by("tenant:read")
@strawberry.type(name="Member")
class MemberNode(relay.Node):
    id: relay.NodeID[int]
    role: RoleEnum
    created_at: datetime
    joined_at: datetime = strawberry.field(description="When the member joined (the same as createdAt).")
    user_id: strawberry.Private[int]

    @strawberry.field
    async def user(self, info: Info) -> UserInfo | None:
        row = await info.context.loaders.user.load(self.user_id)
        return UserInfo(email=row.email, name=row.name) if row else None

    @classmethod
    def from_row(cls, row: Membership) -> MemberNode:
        return cls(
            id=row.id, role=row.role, created_at=row.created_at, joined_at=row.created_at, user_id=row.user_id
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, info.context.loaders.membership, node_ids, cls.from_row)


@strawberry.enum
class InvitationStatus(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    revoked = "revoked"
    expired = "expired"


@guarded_by("tenant:admin")
@strawberry.type(name="Invitation")
class InvitationNode(relay.Node):
    """An offer of a role to an email address. Its token is shown once, to the inviter."""

    id: relay.NodeID[int]
    email: str
    role: RoleEnum
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    invited_by_id: strawberry.Private[int | None]

    @strawberry.field(description="Who invited (none when an API key did, or the user is gone).")
    async def invited_by(self, info: Info) -> UserInfo | None:
        if self.invited_by_id is None:
            return None
        row = await info.context.loaders.user.load(self.invited_by_id)
        return UserInfo(email=row.email, name=row.name) if row else None

    @classmethod
    def from_row(cls, row: Invitation) -> InvitationNode:
        return cls(
            id=row.id,
            email=row.email,
            role=row.role,
            status=InvitationStatus(members.status_of(row)),
            created_at=row.created_at,
            expires_at=row.expires_at,
            accepted_at=row.accepted_at,
            revoked_at=row.revoked_at,
            invited_by_id=row.invited_by,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, info.context.loaders.invitation, node_ids, cls.from_row)


@strawberry.type
class MemberQueries:
    @strawberry.field(permission_classes=requires("tenant:read"), description="Members, first joined first.")
    async def members(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[MemberNode]:
        tenant_id = info.context.principal.tenant.id
        async with info.context.control_session() as session:
            return await paginate(
                session,
                members.members_query(tenant_id),
                Membership.id,
                MemberNode.from_row,
                first=first,
                after=after,
                newest_first=False,
            )

    @strawberry.field(permission_classes=ADMIN, description="Pending invitations, newest first.")
    async def invitations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        include_closed: Annotated[
            bool, strawberry.argument(description="Also accepted, revoked and expired ones.")
        ] = False,
    ) -> relay.Connection[InvitationNode]:
        query = members.invitations_query(info.context.principal.tenant.id, include_closed=include_closed)
        async with info.context.control_session() as session:
            return await paginate(
                session, query, Invitation.id, InvitationNode.from_row, first=first, after=after
            )


# ---- mutations -------------------------------------------------------------------------------------


@strawberry.input
class InviteMemberInput:
    email: str
    role: RoleEnum = strawberry.field(description="Only an owner may invite an owner.")


@strawberry.type
class InviteMemberPayload:
    invitation: InvitationNode | None = None
    token: str | None = strawberry.field(
        default=None,
        description="The secret to accept with, shown only this once: deliver it to the invitee "
        "(there is no mail sender; the console builds the link).",
    )
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class AcceptInvitationInput:
    token: str
    password: str | None = strawberry.field(
        default=None,
        description="A new account's password (signup rules), or the existing account's when not signed in.",
    )
    name: str | None = strawberry.field(default=None, description="A new account's display name.")


@strawberry.type
class AcceptInvitationPayload(AuthPayload):
    tenant: TenantNode | None = None
    role: RoleEnum | None = None


@strawberry.input
class ChangeMemberRoleInput:
    id: strawberry.ID
    role: RoleEnum


@strawberry.type
class ChangeMemberRolePayload:
    member: MemberNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class RemoveMemberInput:
    id: strawberry.ID


@strawberry.type
class RemoveMemberPayload:
    removed_member_id: strawberry.ID | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class RevokeInvitationInput:
    id: strawberry.ID


@strawberry.type
class RevokeInvitationPayload:
    invitation: InvitationNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _manager(info: Info) -> members.Manager:
    p = info.context.principal
    return members.Manager(p.tenant.id, p.user_id, Role(p.role) if p.role else None)


def _row_id(gid: strawberry.ID, type_name: str, what: str) -> int:
    found = decode_node_id(gid, type_name)
    if found is None:
        raise NotFound(what)
    return found


@strawberry.type
class MemberMutations:
    @strawberry.mutation(permission_classes=ADMIN, description="Invite an email address with a role.")
    async def invite_member(self, info: Info, input: InviteMemberInput) -> InviteMemberPayload:
        actor = await actor_name(info)
        try:
            async with info.context.tenant_session() as session:
                row, token = await members.invite(
                    session, _manager(info), email=input.email, role=Role(input.role)
                )
                data = {"email": row.email, "role": row.role.value, "invitation_id": row.id}
                await activity.record(session, "member.invited", actor=actor, data=data)
        except UserError as exc:
            return InviteMemberPayload(user_errors=[UserErrorType.from_exc(exc)])
        return InviteMemberPayload(invitation=InvitationNode.from_row(row), token=token)

    @strawberry.mutation(
        description="Take up an invitation, signed in or not; answers tokens signed in to its tenant."
    )
    async def accept_invitation(self, info: Info, input: AcceptInvitationInput) -> AcceptInvitationPayload:
        ctx = info.context
        signed_in = ctx.principal.user_id if ctx.principal is not None else None
        try:
            ref = await members.tenant_of(ctx.db, ctx.redis, input.token, ctx.client_ip)
            async with ctx.db.tenant_session(ref) as session:
                joined = await members.accept(
                    session,
                    ctx.redis,
                    token=input.token,
                    password=input.password,
                    name=input.name or "",
                    signed_in_user=signed_in,
                    ip=ctx.client_ip,
                )
                data = {
                    "email": joined.email,
                    "role": joined.membership.role.value,
                    "invitation_id": joined.invitation.id,
                    "new_account": joined.new_account,
                }
                await activity.record(
                    session, "member.joined", actor=f"user:{joined.membership.user_id}", data=data
                )
                tenant = await session.get(Tenant, ref.id)
        except UserError as exc:
            return AcceptInvitationPayload(user_errors=[UserErrorType.from_exc(exc)])
        tokens = joined.tokens
        return AcceptInvitationPayload(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            tenant=TenantNode.from_row(tenant),
            role=joined.membership.role,
        )

    @strawberry.mutation(permission_classes=ADMIN)
    async def change_member_role(self, info: Info, input: ChangeMemberRoleInput) -> ChangeMemberRolePayload:
        actor = await actor_name(info)
        try:
            member_id = _row_id(input.id, "Member", "member")
            async with info.context.tenant_session() as session:
                member, previous, email = await members.change_role(
                    session, _manager(info), member_id, Role(input.role)
                )
                if member.role is not previous:
                    data = {"email": email, "from": previous.value, "to": member.role.value}
                    await activity.record(session, "member.role_changed", actor=actor, data=data)
        except UserError as exc:
            return ChangeMemberRolePayload(user_errors=[UserErrorType.from_exc(exc)])
        return ChangeMemberRolePayload(member=MemberNode.from_row(member))

    @strawberry.mutation(
        permission_classes=ADMIN, description="Take a member out of the tenant (yourself included)."
    )
    async def remove_member(self, info: Info, input: RemoveMemberInput) -> RemoveMemberPayload:
        actor = await actor_name(info)
        try:
            member_id = _row_id(input.id, "Member", "member")
            async with info.context.tenant_session() as session:
                member, email = await members.remove(session, _manager(info), member_id)
                data = {"email": email, "role": member.role.value}
                await activity.record(session, "member.removed", actor=actor, data=data)
        except UserError as exc:
            return RemoveMemberPayload(user_errors=[UserErrorType.from_exc(exc)])
        return RemoveMemberPayload(removed_member_id=input.id)

    @strawberry.mutation(permission_classes=ADMIN)
    async def revoke_invitation(self, info: Info, input: RevokeInvitationInput) -> RevokeInvitationPayload:
        actor = await actor_name(info)
        try:
            invitation_id = _row_id(input.id, "Invitation", "invitation")
            async with info.context.tenant_session() as session:
                row, changed = await members.revoke(session, _manager(info), invitation_id)
                if changed:
                    data = {"email": row.email, "role": row.role.value, "invitation_id": row.id}
                    await activity.record(session, "invitation.revoked", actor=actor, data=data)
        except UserError as exc:
            return RevokeInvitationPayload(user_errors=[UserErrorType.from_exc(exc)])
        return RevokeInvitationPayload(invitation=InvitationNode.from_row(row))
