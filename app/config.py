"""Settings from the environment (``OMS_*``), read once per process."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"OMS_{name}")
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    redis_url: str | None
    env: str  # dev | test | prod
    deployment: str  # saas | private
    secret_key: str
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    queue_name: str
    redis_prefix: str
    login_max_failures: int
    login_window_s: int
    statement_cache_size: int
    # Hosts, IPs and CIDRs outbound calls may reach although private (``app.outbound``).
    outbound_allow: tuple[str, ...] = ()
    data_dir: Path = field(default=PROJECT_ROOT / ".oms")

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"


@lru_cache
def get_settings() -> Settings:
    env = _env("ENV", "dev")
    secret = _env("SECRET_KEY")
    if secret is None:
        if env == "prod":
            raise RuntimeError("OMS_SECRET_KEY must be set when OMS_ENV=prod")
        # Dev/test only: a per-process key means tokens die with the process, which is what we want there.
        secret = secrets.token_urlsafe(32)
    return Settings(
        database_url=_env("DATABASE_URL"),
        redis_url=_env("REDIS_URL"),
        env=env,
        deployment=_env("DEPLOYMENT", "saas"),
        secret_key=secret,
        access_token_ttl_s=_int("ACCESS_TOKEN_TTL", 900),
        refresh_token_ttl_s=_int("REFRESH_TOKEN_TTL", 30 * 86400),
        queue_name=_env("QUEUE_NAME", "oms:queue"),
        redis_prefix=_env("REDIS_PREFIX", "oms"),
        login_max_failures=_int("LOGIN_MAX_FAILURES", 5),
        login_window_s=_int("LOGIN_WINDOW", 900),
        statement_cache_size=_int("STATEMENT_CACHE_SIZE", 100),
        outbound_allow=tuple(e.strip() for e in (_env("OUTBOUND_ALLOW") or "").split(",") if e.strip()),
        data_dir=Path(_env("DATA_DIR", str(PROJECT_ROOT / ".oms"))),
    )
