"""The Strawberry schema, assembled from the per-domain modules.

Export: ``strawberry export-schema app.api.schema:schema > graphql/schema.graphql`` (a test fails on drift).
"""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache

from app.api.activity import ActivityQueries
from app.api.carriers import CarrierMutations, CarrierQueries
from app.api.catalog import CatalogMutations, CatalogQueries
from app.api.catalog_csv import CatalogCsvMutations, CatalogCsvQueries
from app.api.channels import ChannelMutations, ChannelQueries
from app.api.errors import MaskInternalErrors
from app.api.fulfillment import FulfillmentMutations, FulfillmentQueries
from app.api.input_bounds import bound_schema
from app.api.inventory import InventoryMutations, InventoryQueries
from app.api.members import MemberMutations, MemberQueries
from app.api.merges import MergeMutations
from app.api.orders import OrderMutations, OrderQueries, OrderSubscriptions
from app.api.relay import node_field
from app.api.routing import RoutingMutations, RoutingQueries
from app.api.scopes import guard_schema
from app.api.tenants import TenantMutations, TenantQueries
from app.api.validation import GuardedValidation, limit_rules

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5000
CACHE_SIZE = 256  # distinct documents kept parsed and validated (LRU, shared by every request)

# The depth and alias rules are classes that QueryDepthLimiter / MaxAliasesLimiter create per instance.
# They are created once here, so every request validates with the same rules: the validation cache keys
# on (schema, document, rules, audience), and fresh classes per request would make every lookup a miss.
LIMIT_RULES = limit_rules(MAX_DEPTH, MAX_ALIASES)


@strawberry.type
class Query(
    TenantQueries,
    MemberQueries,
    ActivityQueries,
    CatalogQueries,
    ChannelQueries,
    CatalogCsvQueries,
    InventoryQueries,
    OrderQueries,
    RoutingQueries,
    CarrierQueries,
    FulfillmentQueries,
):
    node: relay.Node | None = node_field(description="Any object of your tenant by its global id.")
    nodes: list[relay.Node | None] = node_field()


@strawberry.type
class Mutation(
    TenantMutations,
    MemberMutations,
    CatalogMutations,
    ChannelMutations,
    CatalogCsvMutations,
    InventoryMutations,
    OrderMutations,
    RoutingMutations,
    CarrierMutations,
    FulfillmentMutations,
    MergeMutations,
):
    pass


@strawberry.type
class Subscription(OrderSubscriptions):
    pass


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Internal errors are logged (with traceback and request id) by MaskInternalErrors."""


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        # The limits come first: they set the parse options (max tokens) and the validation rules that
        # the caches key on, so a cached answer (a document, or its errors) always includes the limits.
        lambda: AddValidationRules(list(LIMIT_RULES)),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: GuardedValidation(maxsize=CACHE_SIZE),
        MaskInternalErrors,
    ],
)
guard_schema(schema._schema)  # after every type is known: scopes hold wherever a type is reached
bound_schema(schema._schema)  # outermost: no resolver sees an argument out of its bounds
