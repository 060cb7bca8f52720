"""Health, readiness, metrics, request ids, JSON logs, and no internals leaking to clients."""

from __future__ import annotations

import json
import logging

from arq.connections import ArqRedis

import app.asgi
from app.logs import JsonFormatter, request_id_var
from tests.conftest import CREATE_KEY


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_reports_redis_outage_as_503(client, monkeypatch):
    dead = ArqRedis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)

    async def dead_redis():
        return dead

    monkeypatch.setattr(app.asgi, "get_redis", dead_redis)
    try:
        ready = await client.get("/readyz")
    finally:
        await dead.aclose()
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "redis": "unavailable"}


async def test_metrics_count_requests(client):
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'oms_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "oms_http_request_seconds_bucket" in text


async def test_request_id_is_echoed_or_generated(client):
    given = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"x-request-id": "bad id with spaces; drop"})
    assert generated.headers["x-request-id"] != "bad id with spaces; drop"
    assert len(generated.headers["x-request-id"]) == 32


async def test_internal_errors_are_masked_and_carry_the_request_id(gql, tenant_a, monkeypatch, caplog):
    from tenants import service

    async def broken(*args, **kwargs):
        raise RuntimeError('relation "control.api_keys" does not exist: SELECT secret_hash FROM ...')

    monkeypatch.setattr(service, "create_api_key", broken)
    with caplog.at_level(logging.ERROR, logger="app.api"):
        r = await gql.raw(
            CREATE_KEY,
            {"input": {"name": "x", "scopes": ["orders:read"]}},
            token=tenant_a.token,
            headers={"x-request-id": "req-42"},
        )
    body = r.text
    assert "SELECT" not in body and "Traceback" not in body and "api_keys" not in body
    error = r.json()["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    assert any("SELECT secret_hash" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)


def test_json_log_lines_carry_the_request_id():
    token = request_id_var.set("rid-7")
    try:
        record = logging.LogRecord("app.http", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["msg"] == "GET /x" and line["request_id"] == "rid-7" and line["level"] == "info"
