"""Shared fixtures: a fresh database per test run, Redis namespaced per run, an ASGI client, tenants.

Servers come from OMS_DATABASE_URL / OMS_REDIS_URL when set (CI), else the embedded ones under .oms/.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass

import httpx
import pytest

from app.config import PROJECT_ROOT

RUN_ID = secrets.token_hex(4)
_started: list = []


def _server_urls() -> tuple[str, str]:
    from app import devstack

    data_dir = PROJECT_ROOT / ".oms" / "test"
    db_url = os.environ.get("OMS_DATABASE_URL")
    if not db_url:
        db_url = devstack.start_postgres(data_dir)
        _started.append(lambda: devstack.stop_postgres(data_dir))
    redis_url = os.environ.get("OMS_REDIS_URL")
    if not redis_url:
        redis_url, stop = devstack.start_redis(data_dir)
        _started.append(stop)
    return db_url, redis_url


def pytest_configure(config) -> None:
    from app.db import create_database, with_database

    server_url, redis_url = _server_urls()
    test_db = f"oms_test_{RUN_ID}"
    asyncio.run(create_database(server_url, test_db))
    config._oms_server_url = server_url
    os.environ.update(
        OMS_DATABASE_URL=with_database(server_url, test_db),
        OMS_REDIS_URL=redis_url,
        OMS_ENV="test",
        OMS_SECRET_KEY="test-secret-key-" + RUN_ID,
        OMS_QUEUE_NAME=f"oms:test:{RUN_ID}:queue",
        OMS_REDIS_PREFIX=f"oms:test:{RUN_ID}",
        # Every test signs up from the same address; the tests of that limit lower it.
        OMS_SIGNUPS_PER_HOUR="1000000",
        # The fake connectors and channel servers of the tests listen on loopback (tests that check
        # the outbound guard itself switch this off: tests/test_outbound_guard.py).
        OMS_OUTBOUND_ALLOW="127.0.0.1",
    )
    from app.config import get_settings

    get_settings.cache_clear()


def pytest_unconfigure(config) -> None:
    from app.db import drop_database

    server_url = getattr(config, "_oms_server_url", None)
    if server_url:
        test_db = f"oms_test_{RUN_ID}"

        async def drop() -> None:
            await drop_database(server_url, test_db)
            import redis.asyncio as aioredis

            r = aioredis.from_url(os.environ["OMS_REDIS_URL"])
            keys = [k async for k in r.scan_iter(match=f"*{RUN_ID}*", count=1000)]
            if keys:
                await r.delete(*keys)
            await r.aclose()

        asyncio.run(drop())
    for stop in _started:
        stop()


@pytest.fixture(scope="session")
async def db():
    from app.db import close_db, init_db
    from app.migrate import upgrade_control

    database = init_db()
    async with database.engine.begin() as conn:
        await upgrade_control(conn)
    yield database
    from app.redis import close_redis

    await close_redis()
    await close_db()


@pytest.fixture(scope="session")
async def redis(db):
    from app.redis import get_redis

    return await get_redis()


@pytest.fixture(scope="session")
def app(db):
    from app.asgi import create_app

    return create_app(manage_resources=False)


@pytest.fixture
def settings_env(monkeypatch):
    """Set ``OMS_*`` variables for one test: ``settings_env(SIGNUPS_PER_HOUR="2")``; undone afterwards."""
    from app.config import get_settings

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"OMS_{name}", value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class GraphQLClient:
    """Posts GraphQL over HTTP the way a brand's back office would."""

    def __init__(self, http: httpx.AsyncClient):
        self.http = http

    async def raw(
        self,
        query: str,
        variables: dict | None = None,
        *,
        token: str | None = None,
        api_key: str | None = None,
        headers: dict | None = None,
    ) -> httpx.Response:
        h = {"accept": "application/graphql-response+json"}
        if token:
            h["authorization"] = f"Bearer {token}"
        if api_key:
            h["x-api-key"] = api_key
        h.update(headers or {})
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=h
        )

    async def __call__(self, query: str, variables: dict | None = None, **kw) -> dict:
        """Returns ``data``; fails the test on any top-level error."""
        response = await self.raw(query, variables, **kw)
        body = response.json()
        assert response.status_code == 200, body
        assert not body.get("errors"), body["errors"]
        return body["data"]


@pytest.fixture
def gql(client) -> GraphQLClient:
    return GraphQLClient(client)


@dataclass
class TenantCtx:
    slug: str
    tenant_id: str  # global id
    email: str
    password: str
    token: str
    refresh_token: str
    api_key: str  # full-scope API key


SIGNUP = """
mutation($input: SignupInput!) {
  signup(input: $input) { accessToken refreshToken tenant { id slug } userErrors { field message code } }
}"""
CREATE_KEY = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { key apiKey { id scopes } userErrors { field message code } }
}"""


@pytest.fixture
def make_tenant(gql):
    """Sign a new tenant up through the public GraphQL API; returns its credentials."""

    async def make(prefix: str = "t") -> TenantCtx:
        slug = f"{prefix}_{secrets.token_hex(4)}"
        email, password = f"owner@{slug}.example.com", "correct horse battery"
        data = await gql(
            SIGNUP,
            {
                "input": {
                    "organization": f"{slug} group",
                    "tenantName": slug.upper(),
                    "slug": slug,
                    "email": email,
                    "password": password,
                }
            },
        )
        result = data["signup"]
        assert result["userErrors"] == [], result
        from tenants.auth import ALL_SCOPES

        key = await gql(
            CREATE_KEY,
            {"input": {"name": "back office", "scopes": list(ALL_SCOPES)}},
            token=result["accessToken"],
        )
        assert key["createApiKey"]["userErrors"] == []
        return TenantCtx(
            slug,
            result["tenant"]["id"],
            email,
            password,
            result["accessToken"],
            result["refreshToken"],
            key["createApiKey"]["key"],
        )

    return make


@pytest.fixture
async def tenant_a(make_tenant) -> TenantCtx:
    return await make_tenant("a")


@pytest.fixture
async def tenant_b(make_tenant) -> TenantCtx:
    return await make_tenant("b")


@pytest.fixture
def run_jobs(db, redis):
    """Relay the outbox to Redis and run a real arq worker in burst mode until the queue is empty."""
    from app.config import get_settings
    from app.outbox import relay_once
    from app.worker import make_worker

    async def run() -> None:
        queue = get_settings().queue_name
        while await relay_once(db, redis, queue_name=queue):
            pass
        worker = make_worker(burst=True, handle_signals=False, poll_delay=0.05)
        try:
            await worker.main()
        finally:
            await worker.close()

    return run


@pytest.fixture
def connector_server():
    """A real HTTP server standing in for a location's WMS (tests.routing_support.ConnectorServer)."""
    from tests.routing_support import ConnectorServer

    server = ConnectorServer().start()
    yield server
    server.stop()
