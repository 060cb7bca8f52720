"""`oms dev`: the whole stack in one process on one port.

Embedded PostgreSQL and Redis (unless OMS_DATABASE_URL / OMS_REDIS_URL are set), migrations, the demo
tenant, the API (uvicorn) and the arq worker with its outbox relay. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import uvicorn

from app.config import get_settings
from app.logs import configure_logging


async def _serve(host: str, port: int) -> None:
    from app.api.view import MAX_WS_MESSAGE_BYTES
    from app.asgi import create_app
    from app.db import init_db
    from app.migrate import migrate_all
    from app.seed import DEMO_EMAIL, DEMO_PASSWORD, seed_demo
    from app.worker import make_worker

    db = init_db()
    report = await migrate_all(db)
    if report.failed:
        raise SystemExit(f"migration failed: {report.failed}")
    await seed_demo(db)

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(),
            host=host,
            port=port,
            log_config=None,
            lifespan="on",
            ws_max_size=MAX_WS_MESSAGE_BYTES,
            proxy_headers=False,  # forwarded headers: only from OMS_TRUSTED_PROXIES (app.asgi)
        )
    )
    worker = make_worker(handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run(), name="worker")
    url = f"http://{host}:{port}"
    print(
        "\n  Order hub is running\n"
        f"    console/API   {url}\n"
        f"    GraphQL       {url}/graphql  (GraphiQL in the browser)\n"
        f"    health        {url}/healthz  {url}/readyz  {url}/metrics\n"
        f"    demo login    {DEMO_EMAIL} / {DEMO_PASSWORD}  (tenant 'demo')\n"
        f"    database      {_redact(get_settings().database_url)}\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        await server.serve()  # returns on Ctrl-C / SIGTERM (uvicorn handles the signals)
    finally:
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker_task
        await worker.close()


def _redact(url: str | None) -> str:
    if not url or "@" not in url:
        return str(url)
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':')[0]}@{host}"


def run_dev(host: str, port: int) -> int:
    from app.devstack import local_services

    configure_logging(os.environ.get("OMS_LOG_LEVEL", "WARNING"))
    settings = get_settings()
    with local_services(settings.data_dir) as (database_url, redis_url):
        os.environ["OMS_DATABASE_URL"] = database_url
        os.environ["OMS_REDIS_URL"] = redis_url
        get_settings.cache_clear()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(host, port))
    print("stopped.")
    return 0
