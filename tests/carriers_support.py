"""Carrier GraphQL operations and builders, shared by the carrier and routing-cost tests."""

from __future__ import annotations

from tests.routing_support import (
    ERRORS,
)


def rate(first: float, extra: float) -> dict[str, float]:
    return {"first_kg": first, "extra_kg": extra}


FIELDS = "id code name services slaDays coldChain cutoff active"
CREATE = f"""mutation($input: CreateCarrierInput!) {{
  createCarrier(input: $input) {{ carrier {{ {FIELDS} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: UpdateCarrierInput!) {{
  updateCarrier(input: $input) {{ carrier {{ {FIELDS} }} {ERRORS} }} }}"""
DEACTIVATE = f"""mutation($input: DeactivateCarrierInput!) {{
  deactivateCarrier(input: $input) {{ carrier {{ {FIELDS} }} {ERRORS} }} }}"""
LIST = """query($filter: CarrierFilter) { carriers(filter: $filter) { edges { node { id code active } } } }"""
NODE = f"""query($id: ID!) {{ node(id: $id) {{ ... on Carrier {{ {FIELDS} }} }} }}"""


async def create(gql, tenant, **values) -> dict:
    data = await gql(CREATE, {"input": values}, api_key=tenant.api_key)
    payload = data["createCarrier"]
    assert payload["userErrors"] == [], payload
    return payload["carrier"]


ROUTING = """query($id: ID!) { orderRouting(orderId: $id) { decisions { explanation carrier
  shipments { name carrier carrierService carrierExplanation carrierOptions } } } }"""
