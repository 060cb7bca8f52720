"""Engines and the ONE way to get a session: ``control_session()`` and ``tenant_session(tenant)``.

Tenant tables are declared in the placeholder schema ``tenant``; a tenant session maps it onto the
tenant's real schema with ``schema_translate_map``. That map does not touch ``text()`` SQL, so raw SQL
inside tenant code must not name schemas itself.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from app.config import get_settings

CONTROL_SCHEMA = "control"
TENANT_PLACEHOLDER = "tenant"
# Use with fullmatch(): ``$`` would also match before a trailing newline, and a slug reaches DDL.
SLUG_RE = re.compile(r"[a-z][a-z0-9_]{2,39}")
TENANT_SCHEMA_RE = re.compile(r"t_[a-z][a-z0-9_]{2,39}")

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ControlBase(DeclarativeBase):
    """Tables of the shared control schema."""

    metadata = MetaData(schema=CONTROL_SCHEMA, naming_convention=_NAMING)


class TenantBase(DeclarativeBase):
    """Tables that exist once per tenant schema (declared under the placeholder schema)."""

    metadata = MetaData(schema=TENANT_PLACEHOLDER, naming_convention=_NAMING)


@dataclass(frozen=True)
class TenantRef:
    """What a session needs to know about a tenant: its id and its (derived, validated) schema."""

    id: int
    schema_name: str


def schema_for_slug(slug: str) -> str:
    """Derive the schema name from a validated slug; never take a schema name from input."""
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        raise ValueError(f"invalid tenant slug: {slug!r}")
    return f"t_{slug}"


def checked_schema(schema: str) -> str:
    """A tenant or control schema name, refused unless it has exactly the shape we derive."""
    if schema != CONTROL_SCHEMA and not (isinstance(schema, str) and TENANT_SCHEMA_RE.fullmatch(schema)):
        raise ValueError(f"invalid schema name: {schema!r}")
    return schema


def quote_ident(name: str) -> str:
    """A checked schema name quoted for DDL: both checked and quoted, so neither alone is relied on."""
    return '"' + checked_schema(name).replace('"', '""') + '"'


def async_url(url: str) -> str:
    """Turn a plain ``postgresql://`` URL into SQLAlchemy's asyncpg form."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+asyncpg"
    return urlunsplit((scheme, *parts[1:]))


def plain_url(url: str) -> str:
    """The ``postgresql://`` form asyncpg.connect() understands."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", *parts[1:]))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


DATABASE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _database_name(name: str) -> str:
    """Database names are interpolated into CREATE/DROP DATABASE (no parameters there): only plain
    lower-case identifiers are accepted."""
    if not DATABASE_NAME_RE.match(name):
        raise ValueError(f"invalid database name: {name!r}")
    return name


async def create_database(server_url: str, name: str) -> None:
    """CREATE DATABASE ``name`` on the server of ``server_url`` (tests and benchmarks each work in a
    database of their own)."""
    import asyncpg

    name = _database_name(name)
    conn = await asyncpg.connect(plain_url(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(server_url: str, name: str) -> None:
    """DROP DATABASE ``name`` if it exists, disconnecting whoever is still in it. Connects to the
    ``postgres`` maintenance database, since a database cannot be dropped from inside itself."""
    import asyncpg

    name = _database_name(name)
    conn = await asyncpg.connect(plain_url(with_database(server_url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class Database:
    """One engine (one pool) per process; tenant engines are cheap option-views over it."""

    def __init__(self, url: str, *, pool_size: int = 10, statement_cache_size: int | None = None):
        cache = get_settings().statement_cache_size if statement_cache_size is None else statement_cache_size
        self.url = url
        self.options = {"pool_size": pool_size, "statement_cache_size": cache}
        # Every tenant x query is a distinct SQL text for asyncpg (the schema is rendered into it), so
        # both prepared-statement caches are sized from settings; bench/tenants.py measures the effect.
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            # A connection cut while idle in the pool (server restart, failover, pg_terminate_backend)
            # is found by a ping at checkout and replaced, instead of failing the request that drew it.
            pool_pre_ping=True,
            connect_args={
                "statement_cache_size": cache,
                "prepared_statement_cache_size": cache,
                "server_settings": {"application_name": "order-hub"},
            },
        )
        self._control = async_sessionmaker(self.engine, expire_on_commit=False)
        self._tenant_makers: dict[str, async_sessionmaker[AsyncSession]] = {}

    def _tenant_maker(self, schema: str) -> async_sessionmaker[AsyncSession]:
        maker = self._tenant_makers.get(schema)
        if maker is None:
            checked_schema(schema)
            engine = self.engine.execution_options(schema_translate_map={TENANT_PLACEHOLDER: schema})
            maker = self._tenant_makers[schema] = async_sessionmaker(engine, expire_on_commit=False)
        return maker

    @asynccontextmanager
    async def control_session(self) -> AsyncIterator[AsyncSession]:
        """A session on the control schema, in one transaction committed on success."""
        async with self._control() as session, session.begin():
            yield session

    @asynccontextmanager
    async def tenant_session(self, tenant: TenantRef) -> AsyncIterator[AsyncSession]:
        """A session whose tenant tables resolve into ``tenant.schema_name``; control tables stay
        reachable in the same transaction (the outbox lives there)."""
        async with self._tenant_maker(tenant.schema_name)() as session, session.begin():
            session.info["tenant"] = tenant
            yield session

    def forget_tenant(self, schema: str) -> None:
        self._tenant_makers.pop(schema, None)

    async def dispose(self) -> None:
        await self.engine.dispose()


_db: Database | None = None


def init_db(
    url: str | None = None, *, pool_size: int | None = None, statement_cache_size: int | None = None
) -> Database:
    """Create the process-wide Database, or return the open one when it is for the same URL.

    Options given for an open Database must match the ones it was opened with (``statement_cache_size``
    compared after its default is resolved from settings): a pool cannot be resized in place, so a
    mismatch raises RuntimeError rather than being silently ignored. ``await close_db()`` first to
    reopen with other options. Options left out (None) accept whatever the open Database has. A
    different URL replaces the process-wide Database (the old one is not disposed: close it first).
    """
    global _db
    url = url or get_settings().database_url
    if not url:
        raise RuntimeError("OMS_DATABASE_URL is not set (run `oms dev` for the embedded default)")
    if _db is not None and _db.url == url:
        wanted = {"pool_size": pool_size, "statement_cache_size": statement_cache_size}
        differ = {k: v for k, v in wanted.items() if v is not None and v != _db.options[k]}
        if differ:
            raise RuntimeError(
                f"the database is already open with {_db.options}; cannot apply {differ} to it"
                " (close_db() first)"
            )
        return _db
    options = {"statement_cache_size": statement_cache_size}
    if pool_size is not None:
        options["pool_size"] = pool_size
    _db = Database(url, **options)
    return _db


# Deadlock, serialization failure, unique violation (a concurrent twin won the race): worth running again.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "23505"})
# The server went away under us or is not taking connections yet (admin_shutdown, crash_shutdown,
# cannot_connect_now); with SQLSTATE class 08 (connection exception) a new connection may well work.
CONNECTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_transient(exc: BaseException) -> bool:
    """True for a database error that a retry of the same work may not meet again: a lost race, or a
    lost connection (the pool replaces it)."""
    return is_lost_connection(exc) or any(_sqlstate(e) in TRANSIENT_SQLSTATES for e in _driver_errors(exc))


def is_lost_connection(exc: BaseException) -> bool:
    """True when the connection under the work broke: the work can run again, but not in the session
    it started in."""
    import asyncpg

    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or isinstance(exc, ConnectionError):
        return True
    for err in _driver_errors(exc):
        if isinstance(err, OSError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            return True
        code = _sqlstate(err)
        if code in CONNECTION_SQLSTATES or code.startswith("08"):
            return True
    return False


def _driver_errors(exc: BaseException) -> list[BaseException]:
    """The driver's errors behind ``exc``. Only a database error is looked into, so a domain error
    raised while handling one is not mistaken for it."""
    if isinstance(exc, DBAPIError):
        return [e for e in (exc.orig, getattr(exc.orig, "__cause__", None)) if e is not None]
    return [exc]


def _sqlstate(err: BaseException) -> str:
    code = getattr(err, "sqlstate", None)
    return code if isinstance(code, str) else ""


def session_tenant(session: AsyncSession) -> TenantRef:
    """The tenant a tenant session was opened for (services use it to enqueue tenant jobs)."""
    return session.info["tenant"]


def db_ready() -> bool:
    return _db is not None


def get_db() -> Database:
    if _db is None:
        return init_db()
    return _db


async def close_db() -> None:
    global _db
    if _db is not None:
        await _db.dispose()
        _db = None


def control_session():
    return get_db().control_session()


def tenant_session(tenant: TenantRef):
    return get_db().tenant_session(tenant)
