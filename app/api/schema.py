"""The Strawberry schema, assembled from the per-domain modules.

Export: ``strawberry export-schema app.api.schema:schema > graphql/schema.graphql`` (a test fails on drift).
"""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from app.api.activity import ActivityQueries
from app.api.catalog import CatalogMutations, CatalogQueries
from app.api.catalog_csv import CatalogCsvMutations, CatalogCsvQueries
from app.api.channels import ChannelMutations, ChannelQueries
from app.api.errors import MaskInternalErrors
from app.api.inventory import InventoryMutations, InventoryQueries
from app.api.tenants import TenantMutations, TenantQueries

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5000


@strawberry.type
class Query(
    TenantQueries, ActivityQueries, CatalogQueries, ChannelQueries, CatalogCsvQueries, InventoryQueries
):
    node: relay.Node | None = relay.node(description="Any object of your tenant by its global id.")
    nodes: list[relay.Node | None] = relay.node()


@strawberry.type
class Mutation(TenantMutations, CatalogMutations, ChannelMutations, CatalogCsvMutations, InventoryMutations):
    pass


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Internal errors are logged (with traceback and request id) by MaskInternalErrors."""


schema = Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        MaskInternalErrors,
    ],
)
