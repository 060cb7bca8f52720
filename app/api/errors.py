"""GraphQL side of errors: the ``userErrors`` type and masking of internal errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import MaskErrors
from strawberry.relay import GlobalIDValueError
from strawberry.types import Info

from app.errors import UserError
from app.logs import request_id_var
from graphql import GraphQLError, GraphQLSyntaxError, VariableDefinitionNode

T = TypeVar("T")

log = logging.getLogger("app.api")


@strawberry.type(name="UserError")
class UserErrorType:
    """A problem the user can fix: which input field (path), what is wrong, a stable code."""

    field: list[str] | None
    message: str
    code: str

    @classmethod
    def from_exc(cls, exc: UserError) -> UserErrorType:
        return cls(field=exc.field, message=exc.message, code=exc.code)


class PublicError(Exception):
    """Raised by resolvers for errors that are safe to show as top-level GraphQL errors (auth)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.extensions = {"code": code}


def _is_public(error: GraphQLError) -> bool:
    original = error.original_error
    if isinstance(original, GlobalIDValueError):  # an id that names no type of ours: simply not found
        error.extensions = {"code": "NOT_FOUND"}
        return True
    # GraphQLError originals are deliberate (permission classes raise them with their own code).
    return original is None or isinstance(original, (PublicError, UserError, GraphQLError))


class MaskInternalErrors(MaskErrors):
    """Internal errors reach clients as one opaque message with the request id; the log has the rest."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not _is_public(e), error_message="Internal server error")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        rid = request_id_var.get()
        log.error("internal GraphQL error: %s", error.message, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": rid}
        return masked


def with_codes(errors: list[GraphQLError] | None) -> None:
    """Give every error an ``extensions.code``: parse failures, the token limit, spec validation and
    variables that do not fit their type come from graphql-core without one."""
    for error in errors or ():
        if (error.extensions or {}).get("code"):
            continue
        if isinstance(error, GraphQLSyntaxError):
            code = "TOO_MANY_TOKENS" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
        elif error.nodes and isinstance(error.nodes[0], VariableDefinitionNode):
            code = "BAD_USER_INPUT"  # a variable's value does not coerce to its declared type
        elif error.path is None:
            code = "GRAPHQL_VALIDATION_FAILED"
        else:
            continue
        error.extensions = {**(error.extensions or {}), "code": code}


def user_errors(exc: UserError) -> list[UserErrorType]:
    return [UserErrorType.from_exc(exc)]


async def in_tenant(
    info: Info, work: Callable[[AsyncSession], Awaitable[T]]
) -> tuple[T | None, list[UserErrorType]]:
    """Run ``work`` in one transaction of the caller's tenant; a UserError rolls all of it back and
    comes back as ``userErrors``."""
    try:
        async with info.context.tenant_session() as session:
            return await work(session), []
    except UserError as exc:
        return None, user_errors(exc)
