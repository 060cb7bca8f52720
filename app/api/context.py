"""Per-request GraphQL context: who is calling, their tenant's session, DataLoaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.api.errors import PublicError
from app.db import Database
from tenants.auth import Principal


@dataclass
class Context:
    request: HTTPConnection
    response: Any
    db: Database
    redis: Any
    principal: Principal | None
    request_id: str | None = None
    connection_params: dict[str, Any] | None = None  # websockets: connection_init payload
    _loaders: dict[str, Any] = field(default_factory=dict)

    @property
    def client_ip(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise PublicError("authentication required", "UNAUTHENTICATED")
        return self.principal

    @asynccontextmanager
    async def tenant_session(self) -> AsyncIterator[AsyncSession]:
        """A session in the caller's tenant schema. The tenant comes from the credential only."""
        async with self.db.tenant_session(self.require_principal().tenant) as session:
            yield session

    def control_session(self):
        return self.db.control_session()

    @cached_property
    def loaders(self):
        from app.api.loaders import Loaders

        return Loaders(self)
