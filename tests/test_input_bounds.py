"""Every argument of every query and mutation is bounded, and a refusal names the field.

The test walks the schema instead of listing mutations: for each text leaf it sends a NUL byte and
an over-long value, for each number leaf a value out of range, with every other required leaf filled
with a well-typed value. The answer must be the coded refusal naming that leaf, never an internal
error (PostgreSQL refuses NUL; huge numbers overflow columns)."""

from __future__ import annotations

import pytest

from app.api.input_bounds import _RAW, _TEXT_LIMITS, MAX_TEXT
from app.api.schema import schema
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    get_named_type,
)

SAMPLES = {
    "String": "x",
    "ID": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "JSON": {},
    "Date": "2026-01-01",
    "DateTime": "2026-01-01T00:00:00+00:00",
    "Decimal": "1",
}
BAD = {  # scalar -> [(value, expected code)]
    "String": [
        ("bad\x00value", "INVALID_CHARACTERS"),
        (None, "TOO_LONG"),
    ],  # None: one past the field's limit
    "Int": [(1_000_000_000, "OUT_OF_RANGE"), (-(2**31), "OUT_OF_RANGE")],
    "Float": [(1e12, "OUT_OF_RANGE"), (-1e12, "OUT_OF_RANGE")],
    "JSON": [
        ({"a": "\x00"}, "INVALID_CHARACTERS"),
        (_deep := [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], "TOO_LARGE"),
    ],
}


def _sample(type_, depth=0):
    """A well-typed value for every required leaf (optional leaves left out)."""
    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type, depth)
    if isinstance(type_, GraphQLList):
        return [_sample(type_.of_type, depth)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: _sample(field.type, depth + 1)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        }
    return SAMPLES.get(type_.name, "x")


def _leaves(type_, path, owner=""):
    """(path, scalar name) of every leaf we can set, through input objects and lists."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        for name, field in named.fields.items():
            if (named.name, name) not in _RAW:
                yield from _leaves(field.type, [*path, name], named.name)
    elif isinstance(named, GraphQLScalarType) and named.name in BAD:
        yield path, named.name


def _set(value, path, leaf, type_):
    """``value`` with ``leaf`` at ``path`` (creating optional input objects on the way)."""
    if not path:
        return leaf
    named = get_named_type(type_)
    head, *rest = path
    field_type = named.fields[head].type
    current = value.get(head) if isinstance(value, dict) else None
    if current is None:
        current = _sample(get_named_type(field_type)) if rest else None
    if isinstance(current, list):
        current = current[0]
    inner = _set(current, rest, leaf, field_type)
    wrapped = (
        [inner]
        if isinstance(get_named_type(field_type), GraphQLInputObjectType) and _is_list(field_type)
        else inner
    )
    return {**(value or {}), head: wrapped}


def _is_list(type_):
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _bad(scalar, leaf):
    for value, code in BAD[scalar]:
        if value is None:
            limit = _TEXT_LIMITS.get(leaf, MAX_TEXT)
            if limit > 100_000:
                continue  # inline CSV: the HTTP body limit refuses it first (tests/test_security_http.py)
            value = "x" * (limit + 1)
        yield value, code


def _cases():
    for root in ("Mutation", "Query"):
        for field_name, field in schema._schema.type_map[root].fields.items():
            if any(get_named_type(a.type).name == "Upload" for a in field.args.values()):
                continue
            for arg_name, arg in field.args.items():
                for path, scalar in _leaves(arg.type, []):
                    for value, code in _bad(scalar, (path or [arg_name])[-1]):
                        yield pytest.param(
                            root,
                            field_name,
                            arg_name,
                            path,
                            value,
                            code,
                            id=f"{field_name}.{'.'.join([arg_name, *path])}:{code}",
                        )
                if (
                    isinstance(get_named_type(arg.type), GraphQLScalarType)
                    and get_named_type(arg.type).name in BAD
                ):
                    for value, code in _bad(get_named_type(arg.type).name, arg_name):
                        yield pytest.param(
                            root, field_name, arg_name, [], value, code, id=f"{field_name}.{arg_name}:{code}"
                        )


CASES = list(_cases())


def test_the_walk_covers_the_schema():
    names = {c.values[1] for c in CASES}
    assert len(CASES) > 300 and {"signup", "login", "createLocation", "holdOrder", "orders"} <= names


def _document(root, field_name, field, sent):
    var_defs = ", ".join(f"${n}: {a.type}" for n, a in field.args.items() if n in sent)
    arguments = ", ".join(f"{n}: ${n}" for n in field.args if n in sent)
    named = get_named_type(field.type)
    selection = ""
    if hasattr(named, "fields"):
        selection = (
            "{ userErrors { field code message } }" if "userErrors" in named.fields else "{ __typename }"
        )
    keyword = "mutation" if root == "Mutation" else "query"
    return f"{keyword} Probe({var_defs}) {{ {field_name}({arguments}) {selection} }}"


@pytest.mark.parametrize("root, field_name, arg_name, path, value, code", CASES)
async def test_out_of_bounds_input_is_refused_naming_the_field(
    gql, tenant_a, root, field_name, arg_name, path, value, code
):
    field = schema._schema.type_map[root].fields[field_name]
    variables = {
        n: _sample(a.type)
        for n, a in field.args.items()
        if isinstance(a.type, GraphQLNonNull) and a.default_value is Undefined
    }
    variables[arg_name] = (
        _set(variables.get(arg_name), path, value, field.args[arg_name].type) if path else value
    )
    response = await gql.raw(
        _document(root, field_name, field, variables), variables, api_key=tenant_a.api_key
    )
    body = response.json()
    expected_path = path if arg_name == "input" else [arg_name, *path]
    errors = body.get("errors") or []
    assert all(e.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR" for e in errors), errors
    if errors:
        (error,) = errors
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "reason": code}, error
        assert error["message"].startswith(".".join(expected_path) + ":"), error
    else:
        user_errors = body["data"][field_name]["userErrors"]
        assert [(e["code"], e["field"]) for e in user_errors] == [(code, expected_path)], user_errors


async def test_a_note_may_still_carry_newlines_and_tabs(gql, tenant_a):
    data = await gql(
        "mutation($input: SignupInput!) { signup(input: $input) { userErrors { code field } } }",
        {
            "input": {
                "organization": "Org\twith tab",
                "tenantName": "T",
                "slug": "nl_ok_slug",
                "email": "nl@ok.example.com",
                "password": "correct horse battery\n",
            }
        },
    )
    assert data["signup"]["userErrors"] == []
