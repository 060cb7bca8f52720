"""Validation of every GraphQL document: the spec's rules, our limits, and what strangers may learn.

One cached validation per (document, rules, audience). The audience is "public" for unauthenticated
callers in production: they get no introspection and no "Did you mean …?" suggestions (the committed
``graphql/schema.graphql`` is the public contract; signed-in back offices keep introspection). Limit
rules report with an ``extensions.code``, and a document with several operations must name the one
to run (GraphQL spec, "GetOperation"), instead of the first one silently running.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from app.config import get_settings
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    ValidationContext,
    validate,
)


class _CodingContext:
    """A validation context that stamps ``extensions.code`` on what one rule reports."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context, self._code = context, code

    def __getattr__(self, name: str):
        return getattr(self._context, name)

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": self._code}
        self._context.report_error(error)


def coded_rule(rule: type[ASTValidationRule], code: str) -> type[ASTValidationRule]:
    """``rule`` whose errors carry ``extensions.code``, so clients can tell a limit from a typo."""

    class Coded(rule):  # type: ignore[misc, valid-type]
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(_CodingContext(context, code))  # strawberry's limit rules report from here

    Coded.__name__ = f"Coded{rule.__name__}"
    return Coded


def limit_rules(max_depth: int, max_aliases: int) -> tuple[type[ASTValidationRule], ...]:
    """Created once per schema: the validation cache keys on the rule classes themselves."""
    return (
        *(coded_rule(r, "QUERY_TOO_DEEP") for r in QueryDepthLimiter(max_depth=max_depth).validation_rules),
        *(
            coded_rule(r, "TOO_MANY_ALIASES")
            for r in MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules
        ),
    )


_PUBLIC_RULES = (coded_rule(NoSchemaIntrospectionCustomRule, "INTROSPECTION_DISABLED"),)


def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...], public: bool
) -> list[GraphQLError]:
    rules = (*rules, MaybeNullValidationRule, OneOfInputValidationRule, *(_PUBLIC_RULES if public else ()))
    return validate(schema, document, rules, hide_suggestions=public)


_cache = None


def _cached(maxsize: int):
    global _cache
    if _cache is None or _cache.cache_parameters()["maxsize"] != maxsize:
        _cache = lru_cache(maxsize=maxsize)(_validate)
    return _cache


def cache_info():
    return _cache.cache_info() if _cache is not None else None


def _unnamed_choice(document: DocumentNode) -> GraphQLError | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > 1:
        return GraphQLError(
            "Must provide operationName when the document contains several operations",
            extensions={"code": "OPERATION_NAME_REQUIRED"},
        )
    return None


class GuardedValidation(SchemaExtension):
    """Replaces strawberry's ValidationCache: same shared LRU, plus the audience and the operation check."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.validate = _cached(maxsize)

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        principal = getattr(ctx.context, "principal", None)
        public = principal is None and get_settings().env == "prod"
        errors = list(
            self.validate(ctx.schema._schema, ctx.graphql_document, tuple(ctx.validation_rules), public)
        )
        if ctx._provided_operation_name is None and (missing := _unnamed_choice(ctx.graphql_document)):
            errors.append(missing)
        ctx.pre_execution_errors = errors
        yield
