"""Helpers for tests that send orders through the doors (webhooks, CSV upload): fixture payloads, a
webhook channel, signed posts, and what the inbox and the orders table hold afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path

from sqlalchemy import func, select
from strawberry.relay import GlobalID

from app.channels.models import Channel
from app.db import control_session, tenant_session
from app.inbox import InboxMessage
from app.orders.models import Order
from tests.catalog_ops import create_channel, row_id
from tests.factories import tenant_ref

FIXTURES = Path(__file__).parent / "fixtures" / "channels"


def fixture(platform: str, name: str) -> bytes:
    return (FIXTURES / platform / name).read_bytes()


def channel_tenant(gid: str) -> int:
    return int(GlobalID.from_id(gid).node_id.split(".")[0])


async def make_webhook_channel(gql, tenant, platform: str = "web") -> tuple[str, Channel]:
    """A channel created through GraphQL; its secret is read from the database (not exposed by the API)."""
    created = await create_channel(gql, tenant, f"{platform}-{secrets.token_hex(3)}", platform)
    async with tenant_session(await tenant_ref(tenant.slug)) as session:
        return created["id"], await session.get(Channel, row_id(created["id"]))


def oms_headers(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """The documented scheme, computed here independently of the server code."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "X-OMS-Signature": f"sha256={digest}"}
    if timestamp is not None:
        headers["X-OMS-Timestamp"] = timestamp
    return headers


async def post(client, gid: str, body: bytes, headers: dict, **params):
    return await client.post(f"/webhooks/channels/{gid}", content=body, headers=headers, params=params)


async def inbox_row(inbox_id: int) -> InboxMessage:
    async with control_session() as session:
        return await session.get(InboxMessage, inbox_id)


async def count_orders(tenant, channel_id: int | None = None) -> int:
    query = select(func.count()).select_from(Order)
    if channel_id is not None:
        query = query.where(Order.channel_id == channel_id)
    async with tenant_session(await tenant_ref(tenant.slug)) as session:
        return await session.scalar(query)


CSV = FIXTURES / "csv"
MAPPING = json.loads((CSV / "mapping.json").read_text())
IMPORT = """mutation($input: ImportOrdersCsvInput!) { importOrdersCsv(input: $input) {
  inboxStatus inboxMessageId orders created updated unchanged failed errors { line column message }
  userErrors { field message code } } }"""


async def upload(
    client, channel_id: str, data: bytes | None, *, headers: dict | None = None, query: str = IMPORT, **extra
):
    """POSTs the documented multipart form; ``extra`` adds input fields (e.g. csv)."""
    variables = {"input": {"channelId": channel_id, "file": None, "mapping": MAPPING, **extra}}
    files = {"0": ("orders.csv", data, "text/csv")} if data is not None else {}
    form = {
        "operations": json.dumps({"query": query, "variables": variables}),
        "map": json.dumps({"0": ["variables.input.file"]} if data is not None else {}),
    }
    h = {"accept": "application/graphql-response+json", **(headers or {})}
    if not files:  # httpx sends a urlencoded form without files; force multipart with an empty part
        files = {"_": ("", b"", "application/octet-stream")}
    return await client.post("/graphql", data=form, files=files, headers=h)


def bearer(tenant) -> dict:
    return {"authorization": f"Bearer {tenant.token}"}
