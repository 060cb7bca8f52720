"""The Starlette application: /graphql, /webhooks/channels/{id}, /healthz, /readyz, /metrics (and later
/console)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app import fault_metrics, outbox
from app.api.schema import schema
from app.api.view import GraphQLView
from app.api.webhooks import channel_webhook, fulfilment_webhook
from app.config import get_settings
from app.db import close_db, get_db, init_db
from app.logs import configure_logging, request_id_var
from app.orders import doors
from app.redis import close_redis, get_redis

log = logging.getLogger("app.http")

REQUESTS = Counter("oms_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("oms_http_request_seconds", "HTTP request latency", ["method", "route"])


class RequestContextMiddleware:
    """Request id (taken from X-Request-ID if sane, else new), access log line, metrics, and a JSON 500
    that never carries a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = (
            incoming if 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        )
        token = request_id_var.set(rid)
        route = _route_label(scope)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if not started:
                body = JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "Internal server error",
                                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": rid},
                            }
                        ]
                    },
                    500,
                )
                await body(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


def _route_label(scope: Scope) -> str:
    path = scope["path"]
    for prefix in ("/graphql", "/webhooks", "/console", "/healthz", "/readyz", "/metrics"):
        if path.startswith(prefix):
            return prefix
    return "other"


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks: dict[str, str] = {}

    async def check_db() -> None:
        async with get_db().engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_redis() -> None:
        await (await get_redis()).ping()

    for name, check in (("database", check_db), ("redis", check_redis)):
        try:
            await asyncio.wait_for(check(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)


async def metrics(request: Request) -> Response:
    """This process's metrics, then the worker's fault counters and the outbox's state
    (``app.fault_metrics``)."""
    rows = redis = None
    try:  # either may be down: the rest of the metrics still answer
        rows = await asyncio.wait_for(outbox.row_counts(get_db()), timeout=2)
    except Exception as exc:
        log.warning("outbox gauges unavailable: %s", type(exc).__name__)
    try:
        redis = await get_redis()
    except Exception as exc:
        log.warning("fault counters unavailable: %s", type(exc).__name__)
    faults = await fault_metrics.render(redis, rows)
    return PlainTextResponse(generate_latest() + faults, media_type=CONTENT_TYPE_LATEST)


def create_app(*, manage_resources: bool = True) -> Starlette:
    """``manage_resources=False`` lets tests own the DB/Redis lifecycle."""

    @asynccontextmanager
    async def lifespan(app: Starlette):
        if manage_resources:
            configure_logging()
            init_db()
        yield
        await doors.settle()  # webhooks answered at ack=stored finish their ingest before the pool closes
        if manage_resources:
            await close_redis()
            await close_db()

    graphql = GraphQLView(schema)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/webhooks/channels/{channel_id}", channel_webhook, methods=["POST"]),
            Route("/webhooks/fulfilment/{location_id}", fulfilment_webhook, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware)
    proxies = get_settings().trusted_proxies
    if proxies:
        # Outermost, so the request log and every rate limit see the client behind the proxy. Without
        # configured proxies no forwarded header is believed (servers run with proxy_headers=False).
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(proxies))
    return app
