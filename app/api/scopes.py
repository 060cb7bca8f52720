"""Scopes belong to types, not to entry points.

A type marked ``@guarded_by("catalog:read")`` is refused (FORBIDDEN) to a caller without that scope
wherever the schema reaches it: ``node(id:)``, a top-level query, a nested field (an order's channel,
a fulfilment order's location), a connection of it, a mutation's payload or a subscription event.
``guard_schema`` wraps every such field once, when the schema is built, so a field added later is
guarded without anyone remembering to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    default_field_resolver,
    get_named_type,
)

T = TypeVar("T")


def guarded_by(scope: str) -> Callable[[type[T]], type[T]]:
    """Class decorator for Strawberry types: reading this type needs ``scope``."""

    def mark(cls: type[T]) -> type[T]:
        cls.required_scope = scope  # type: ignore[attr-defined]
        return cls

    return mark


def required_scope(cls: Any) -> str:
    scope = getattr(cls, "required_scope", None)
    if scope is None:
        raise TypeError(f"{cls.__name__} has no @guarded_by scope")
    return scope


def type_scope(named: GraphQLNamedType | None, seen: frozenset[str] = frozenset()) -> str | None:
    """The scope of a type: its own mark, or (for Relay's XConnection / XEdge) the one of its nodes."""
    if not isinstance(named, GraphQLObjectType) or named.name in seen:
        return None
    definition = (named.extensions or {}).get("strawberry-definition")
    origin = getattr(definition, "origin", None)
    if (scope := getattr(origin, "required_scope", None)) is not None:
        return scope
    for suffix, field in (("Connection", "edges"), ("Edge", "node")):
        if named.name.endswith(suffix) and field in named.fields:
            return type_scope(get_named_type(named.fields[field].type), seen | {named.name})
    return None


def _guard(field: GraphQLField, scope: str) -> None:
    resolve = field.resolve or default_field_resolver

    def guarded(source, info, **args):
        principal = info.context.principal
        if principal is None:  # the same answers as the permission classes of top-level fields
            raise GraphQLError("authentication required", extensions={"code": "UNAUTHENTICATED"})
        if scope not in principal.scopes:
            raise GraphQLError(f"this operation needs the {scope!r} scope", extensions={"code": "FORBIDDEN"})
        return resolve(source, info, **args)

    guarded.guards_scope = scope  # type: ignore[attr-defined]
    field.resolve = guarded


def guard_schema(schema: GraphQLSchema) -> GraphQLSchema:
    """Wrap every field whose value is (a list or connection of) a guarded type."""
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            scope = type_scope(get_named_type(field.type))
            if scope is not None and not hasattr(field.resolve, "guards_scope"):
                _guard(field, scope)
    return schema


def guarded_fields(schema: GraphQLSchema) -> dict[str, str]:
    """``Type.field`` -> scope, for every field ``guard_schema`` wrapped (what tests walk)."""
    return {
        f"{named.name}.{name}": field.resolve.guards_scope
        for named in schema.type_map.values()
        if isinstance(named, GraphQLObjectType)
        for name, field in named.fields.items()
        if hasattr(field.resolve, "guards_scope")
    }
