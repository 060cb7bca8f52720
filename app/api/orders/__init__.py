"""GraphQL for orders: the Order node and its relations, the list, operator mutations, bulk ingest and
CSV import, the inbox, customer tags, automations, and the ``orderEvents`` subscription. ``schema.py``
mixes in the classes below."""

from __future__ import annotations

import strawberry

from app.api.orders.automations import AutomationMutations, AutomationQueries
from app.api.orders.bulk import OrderBulkMutations
from app.api.orders.customers import CustomerMutations
from app.api.orders.mutations import OrderMutations as _OrderMutations
from app.api.orders.queries import OrderQueries as _OrderQueries
from app.api.orders.subscriptions import OrderSubscriptions


@strawberry.type
class OrderQueries(_OrderQueries, AutomationQueries):
    pass


@strawberry.type
class OrderMutations(_OrderMutations, OrderBulkMutations, CustomerMutations, AutomationMutations):
    pass


__all__ = ["OrderMutations", "OrderQueries", "OrderSubscriptions"]
