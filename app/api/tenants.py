"""GraphQL for the control plane as a tenant sees it: signup, sign-in, its tenant, API keys.

Members and invitations: ``app.api.members``."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.types import Info

from app.api.errors import UserErrorType
from app.api.permissions import requires
from app.api.relay import decode_node_id, int_ids, load_nodes, paginate
from app.api.scopes import guarded_by
from app.errors import NotFound, UserError
from tenants import service
from tenants.auth import ALL_SCOPES
from tenants.models import ApiKey, Role, Tenant

RoleEnum = strawberry.enum(Role, name="Role")


@strawberry.type(name="Tenant")
class TenantNode(relay.Node):
    """A brand: one tenant, one schema."""

    id: relay.NodeID[int]
    slug: str
    name: str
    created_at: datetime
    ready_at: datetime | None

    @classmethod
    def from_row(cls, row: Tenant) -> TenantNode:
        return cls(id=row.id, slug=row.slug, name=row.name, created_at=row.created_at, ready_at=row.ready_at)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        principal = info.context.principal
        results = []
        for tid in int_ids(node_ids):
            if principal is None or tid != principal.tenant.id:
                results.append(None)
                continue
            async with info.context.control_session() as session:
                results.append(cls.from_row(await session.get(Tenant, tid)))
        return results


@strawberry.type
class UserInfo:
    email: str
    name: str


@guarded_by("tenant:admin")
@strawberry.type(name="ApiKey")
class ApiKeyNode(relay.Node):
    """A key for a brand's own back office. The secret is shown once, at creation."""

    id: relay.NodeID[int]
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> ApiKeyNode:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            scopes=list(row.scopes),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, info.context.loaders.api_key, node_ids, cls.from_row)


@strawberry.type
class Viewer:
    role: str | None
    scopes: list[str]
    user_id: strawberry.Private[int | None]
    api_key_id: strawberry.Private[int | None]
    tenant_id: strawberry.Private[int]

    @strawberry.field
    async def user(self, info: Info) -> UserInfo | None:
        if self.user_id is None:
            return None
        row = await info.context.loaders.user.load(self.user_id)
        return UserInfo(email=row.email, name=row.name) if row else None

    @strawberry.field
    async def tenant(self, info: Info) -> TenantNode:
        async with info.context.control_session() as session:
            return TenantNode.from_row(await session.get(Tenant, self.tenant_id))


@strawberry.type
class TenantQueries:
    @strawberry.field(
        permission_classes=requires("tenant:read"), description="Who is calling, and for which tenant."
    )
    def viewer(self, info: Info) -> Viewer:
        p = info.context.principal
        return Viewer(
            role=p.role,
            scopes=sorted(p.scopes),
            user_id=p.user_id,
            api_key_id=p.api_key_id,
            tenant_id=p.tenant.id,
        )

    @strawberry.field(permission_classes=requires("tenant:admin"))
    async def api_keys(
        self, info: Info, first: int | None = None, after: str | None = None, include_revoked: bool = False
    ) -> relay.Connection[ApiKeyNode]:
        query = select(ApiKey).where(ApiKey.tenant_id == info.context.principal.tenant.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        async with info.context.control_session() as session:
            return await paginate(session, query, ApiKey.id, ApiKeyNode.from_row, first=first, after=after)


# ---- mutations -------------------------------------------------------------------------------------


@strawberry.input
class SignupInput:
    organization: str = strawberry.field(description="The group or company; defaults to the tenant name.")
    tenant_name: str
    slug: str = strawberry.field(description="3-40 chars: a lower-case letter, then letters, digits or _.")
    email: str
    password: str
    name: str = ""


@strawberry.type
class AuthPayload:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def from_tokens(cls, tokens: service.Tokens) -> AuthPayload:
        return cls(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_in=tokens.expires_in
        )


@strawberry.type
class SignupPayload(AuthPayload):
    tenant: TenantNode | None = None


@strawberry.input
class LoginInput:
    email: str
    password: str
    tenant: str | None = strawberry.field(default=None, description="Tenant slug, when the user has several.")


@strawberry.input
class RefreshTokenInput:
    refresh_token: str


@strawberry.type
class LogoutPayload:
    ok: bool
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[str] = strawberry.field(description=f"Any of: {', '.join(ALL_SCOPES)}")


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKeyNode | None = None
    key: str | None = strawberry.field(default=None, description="The secret, shown only this once.")
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class RevokeApiKeyInput:
    id: strawberry.ID


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKeyNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class TenantMutations:
    @strawberry.mutation(description="Create an organization, its first brand (tenant) and its owner.")
    async def signup(self, info: Info, input: SignupInput) -> SignupPayload:
        try:
            tenant, tokens = await service.signup(
                info.context.db,
                organization=input.organization,
                tenant_name=input.tenant_name,
                slug=input.slug,
                email=input.email,
                password=input.password,
                name=input.name,
                redis=info.context.redis,
                ip=info.context.client_ip,
            )
        except UserError as exc:
            return SignupPayload(user_errors=[UserErrorType.from_exc(exc)])
        return SignupPayload(
            tenant=TenantNode.from_row(tenant),
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
        )

    @strawberry.mutation
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        ctx = info.context
        try:
            tokens = await service.login(
                ctx.db,
                ctx.redis,
                email=input.email,
                password=input.password,
                tenant_slug=input.tenant,
                ip=ctx.client_ip,
            )
        except UserError as exc:
            return AuthPayload(user_errors=[UserErrorType.from_exc(exc)])
        return AuthPayload.from_tokens(tokens)

    @strawberry.mutation(description="Exchange a refresh token for new tokens; the old one stops working.")
    async def refresh_token(self, info: Info, input: RefreshTokenInput) -> AuthPayload:
        try:
            return AuthPayload.from_tokens(await service.refresh(info.context.db, input.refresh_token))
        except UserError as exc:
            return AuthPayload(user_errors=[UserErrorType.from_exc(exc)])

    @strawberry.mutation
    async def logout(self, info: Info, input: RefreshTokenInput) -> LogoutPayload:
        await service.logout(info.context.db, input.refresh_token)
        return LogoutPayload(ok=True)

    @strawberry.mutation(permission_classes=requires("tenant:admin"))
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        p = info.context.principal
        try:
            async with info.context.control_session() as session:
                row, key = await service.create_api_key(
                    session, p.tenant.id, name=input.name, scopes=input.scopes, created_by=p.user_id
                )
        except UserError as exc:
            return CreateApiKeyPayload(user_errors=[UserErrorType.from_exc(exc)])
        return CreateApiKeyPayload(api_key=ApiKeyNode.from_row(row), key=key)

    @strawberry.mutation(permission_classes=requires("tenant:admin"))
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> RevokeApiKeyPayload:
        p = info.context.principal
        try:
            key_id = decode_node_id(input.id, "ApiKey")
            if key_id is None:
                raise NotFound("API key")
            async with info.context.control_session() as session:
                row = await service.revoke_api_key(session, p.tenant.id, key_id)
        except UserError as exc:
            return RevokeApiKeyPayload(user_errors=[UserErrorType.from_exc(exc)])
        return RevokeApiKeyPayload(api_key=ApiKeyNode.from_row(row))
