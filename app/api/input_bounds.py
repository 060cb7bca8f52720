"""Bounds for every argument of every field, checked in one place before any resolver runs.

GraphQL checks types, not sizes: a NUL byte (which PostgreSQL refuses), a 10 MB name, a quantity of a
billion, a negative priority or a JSON value nested ten thousand deep are all well-typed. Here each
leaf of the arguments is checked against the bound its type and name call for. A mutation whose
payload has ``userErrors`` answers with one naming the field (codes INVALID_CHARACTERS, TOO_LONG,
OUT_OF_RANGE, TOO_MANY, TOO_LARGE); anything else gets a top-level BAD_USER_INPUT error.

Bounds go by the leaf's name, wherever it appears (``priority`` is the same thing in every input).
Raw channel payloads (``IngestOrdersInput.orders``) are left to the order normaliser, which bounds
them field by field in the channel's own terms.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from app.api.errors import UserErrorType
from app.api.orders.bulk import MAX_CSV_BYTES
from graphql import (
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationType,
    default_field_resolver,
    get_named_type,
)

# C0 controls and DEL, except tab, newline and carriage return (which notes and CSV text carry).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MAX_TEXT = 200
_TEXT_LIMITS = {
    "reason": 10_000, "text": 10_000, "address": 500, "street": 500, "search": 200, "url": 2048,
    "password": 1024, "refreshToken": 512, "value": 2000, "name": 500, "title": 500,
    "organization": 200, "tenantName": 200, "email": 254, "after": 200,
    "csv": MAX_CSV_BYTES,  # an inline CSV: the same bound as an uploaded file
}  # fmt: skip
MAX_COUNT = 10_000_000  # stock, capacities, weights: far beyond any shelf, far below any integer limit
_INT_RANGES = {
    "delta": (-MAX_COUNT, MAX_COUNT),  # a stock adjustment may remove units
    "priority": (0, 1_000_000),
    "acceptTimeoutMinutes": (0, 525_600),  # a year
    "releaseDelayMinutes": (0, 525_600),
    "mergeWindowMinutes": (0, 525_600),
    "pickupHoldHours": (0, 8_760),
    "first": (0, 10_000),
    "last": (0, 10_000),
    "limit": (0, 10_000),
}
_FLOAT_RANGES = {"lat": (-90.0, 90.0), "lng": (-180.0, 180.0)}
MAX_FLOAT = 1e9
MAX_LIST = 10_000  # a hard cap; domains bound their own lists tighter (bulkSetStock: 1,000 rows)
MAX_JSON_DEPTH = 32
MAX_JSON_NODES = 20_000
_RAW = {("IngestOrdersInput", "orders")}  # bounded by the channel's normaliser, not here


class _OutOfBounds(Exception):
    def __init__(self, code: str, message: str, path: list[str]) -> None:
        super().__init__(message)
        self.code, self.message, self.path = code, message, path


def _check_json(value: Any, path: list[str]) -> None:
    stack, nodes = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > MAX_JSON_DEPTH:
            raise _OutOfBounds("TOO_LARGE", f"nested deeper than {MAX_JSON_DEPTH} levels", path)
        if nodes > MAX_JSON_NODES:
            raise _OutOfBounds("TOO_LARGE", f"more than {MAX_JSON_NODES} values", path)
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(str(key), path, 200)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_text(item, path, 10_000)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _OutOfBounds("OUT_OF_RANGE", "must be a finite number", path)


def _check_text(value: str, path: list[str], limit: int) -> None:
    if _CONTROL.search(value):
        raise _OutOfBounds("INVALID_CHARACTERS", "must not contain control characters (such as NUL)", path)
    if len(value) > limit:
        raise _OutOfBounds("TOO_LONG", f"must be at most {limit} characters", path)


def _check_leaf(scalar: GraphQLScalarType, name: str, value: Any, path: list[str]) -> None:
    kind = scalar.name
    if kind in ("String", "Date", "DateTime") and isinstance(value, str):
        _check_text(value, path, _TEXT_LIMITS.get(name, MAX_TEXT))
    elif kind == "Int" and isinstance(value, int):
        low, high = _INT_RANGES.get(name, (0, MAX_COUNT))
        if not low <= value <= high:
            raise _OutOfBounds("OUT_OF_RANGE", f"must be between {low} and {high}", path)
    elif kind == "Float" and isinstance(value, (int, float)):
        low, high = _FLOAT_RANGES.get(name, (0.0, MAX_FLOAT))
        if not (math.isfinite(value) and low <= value <= high):
            raise _OutOfBounds("OUT_OF_RANGE", f"must be between {low:g} and {high:g}", path)
    elif kind == "JSON":
        _check_json(value, path)


def _check(type_: GraphQLInputType, name: str, value: Any, path: list[str], owner: str = "") -> None:
    if value is None or (owner, name) in _RAW:
        return
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        if not isinstance(value, list):
            value = [value]  # GraphQL's input coercion: a single value stands for a list of one
        if len(value) > MAX_LIST:
            raise _OutOfBounds("TOO_MANY", f"give at most {MAX_LIST} items", path)
        inner = type_.of_type.of_type if isinstance(type_.of_type, GraphQLNonNull) else type_.of_type
        for index, item in enumerate(value):
            # Rows of input objects are named by position, as the domains name them: ["rows", "2", "onHand"].
            where = [*path, str(index)] if isinstance(inner, GraphQLInputObjectType) else path
            _check(type_.of_type, name, item, where, owner)
    elif isinstance(type_, GraphQLInputObjectType):
        for field_name, field in type_.fields.items():
            key = field.out_name or field_name
            if isinstance(value, dict) and key in value:
                _check(field.type, field_name, value[key], [*path, field_name], type_.name)
    elif isinstance(type_, GraphQLScalarType):
        _check_leaf(type_, name, value, path)


def _payload_with_error(field_type, error: _OutOfBounds):
    """The mutation's own payload carrying the error, when it has ``userErrors``; else None."""
    named = get_named_type(field_type)
    if not isinstance(named, GraphQLObjectType) or "userErrors" not in named.fields:
        return None
    origin = getattr((named.extensions or {}).get("strawberry-definition"), "origin", None)
    try:
        return origin(user_errors=[UserErrorType(field=error.path, message=error.message, code=error.code)])
    except TypeError:  # a payload with required fields besides userErrors
        return None


def _bounded(field, resolve):
    @functools.wraps(resolve)  # keeps what app.api.scopes marked on the resolver
    def bounded(source, info, **args):
        try:
            for arg_name, arg in field.args.items():
                if arg_name in args:
                    # Paths name fields as userErrors always have: without the conventional "input".
                    _check(arg.type, arg_name, args[arg_name], [] if arg_name == "input" else [arg_name])
        except _OutOfBounds as error:
            error.path = error.path or ["input"]
            if info.operation.operation == OperationType.MUTATION and (
                payload := _payload_with_error(field.type, error)
            ):
                return payload
            where = ".".join(error.path)
            raise GraphQLError(
                f"{where}: {error.message}", extensions={"code": "BAD_USER_INPUT", "reason": error.code}
            ) from None
        return resolve(source, info, **args)

    bounded.bounds_inputs = True  # type: ignore[attr-defined]
    return bounded


def bound_schema(schema: GraphQLSchema) -> GraphQLSchema:
    """Wrap every field that takes arguments (queries, mutations, nested connections)."""
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            if field.args and not hasattr(field.resolve, "bounds_inputs"):
                field.resolve = _bounded(field, field.resolve or default_field_resolver)
    return schema
