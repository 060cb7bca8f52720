"""Strawberry permission classes: authentication and scopes (roles map onto scopes)."""

from __future__ import annotations

from functools import cache
from typing import Any

from strawberry.permission import BasePermission


class IsAuthenticated(BasePermission):
    message = "authentication required"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info, **kwargs: Any) -> bool:
        return info.context.principal is not None


@cache
def _scope_permission(scope: str) -> type[BasePermission]:
    class HasScope(BasePermission):
        message = f"this operation needs the {scope!r} scope"
        error_extensions = {"code": "FORBIDDEN"}

        def has_permission(self, source: Any, info, **kwargs: Any) -> bool:
            principal = info.context.principal
            return principal is not None and scope in principal.scopes

    HasScope.__name__ = f"HasScope_{scope.replace(':', '_')}"
    return HasScope


def requires(scope: str) -> list[type[BasePermission]]:
    """``permission_classes=requires("orders:write")``: checked in order, so an anonymous caller is
    told UNAUTHENTICATED and a caller without the scope FORBIDDEN."""
    return [IsAuthenticated, _scope_permission(scope)]
