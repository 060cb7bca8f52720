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


def _list(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in (_env(name) or "").split(",") if part.strip())


# Values that appear in examples, compose files and tutorials: a prod key must be none of them.
_PLACEHOLDER_SECRETS = {
    "change-me",
    "changeme",
    "change_me",
    "secret",
    "secret-key",
    "dev",
    "test",
    "password",
    "please-change-me",
    "replace-me",
    "your-secret-key",
    "oms",
    "default",
}
MIN_SECRET_LENGTH = 32


def weak_secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` must not sign production tokens, or None when it may."""
    if not secret:
        return "OMS_SECRET_KEY must be set when OMS_ENV=prod"
    if secret.strip().lower() in _PLACEHOLDER_SECRETS or "change" in secret.lower():
        return "OMS_SECRET_KEY is a placeholder value; generate one (e.g. `openssl rand -base64 48`)"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"OMS_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters when OMS_ENV=prod"
    if len(set(secret)) < 8:
        return "OMS_SECRET_KEY has too few distinct characters to be a real key"
    return None


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
    signups_per_hour: int
    trusted_proxies: tuple[str, ...]
    statement_cache_size: int
    # Hosts, IPs and CIDRs outbound calls may reach although private (``app.outbound``).
    outbound_allow: tuple[str, ...] = ()
    invitation_ttl_s: int = 7 * 86400  # how long an invitation's token can be accepted
    data_dir: Path = field(default=PROJECT_ROOT / ".oms")
    # An outbox row handed to Redis but whose job has not run after this long is handed over again
    # (``app.outbox``): a Redis that restarted empty lost it.
    outbox_lease_s: float = 120.0
    # Orders sitting in these statuses longer than this (seconds) with no job pending are re-driven by
    # the stuck-order sweep (``app.routing.stuck``), which runs every ``stuck_sweep_every_s``.
    stuck_after_s: dict[str, float] = field(default_factory=dict)
    stuck_sweep_every_s: int = 60
    # Timeout of the jobs on an order's way (``app.worker.SHORT_JOB_S``); a killed worker's job waits it
    # out (+10 s) before another worker may run it.
    short_job_s: float = 30.0

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"


@lru_cache
def get_settings() -> Settings:
    env = _env("ENV", "dev")
    secret = _env("SECRET_KEY")
    if env == "prod" and (problem := weak_secret_problem(secret)):
        raise RuntimeError(problem)
    if secret is None:
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
        signups_per_hour=_int("SIGNUPS_PER_HOUR", 10),
        trusted_proxies=_list("TRUSTED_PROXIES"),
        statement_cache_size=_int("STATEMENT_CACHE_SIZE", 100),
        outbound_allow=_list("OUTBOUND_ALLOW"),
        invitation_ttl_s=_int("INVITATION_TTL", 7 * 86400),
        data_dir=Path(_env("DATA_DIR", str(PROJECT_ROOT / ".oms"))),
        outbox_lease_s=float(_env("OUTBOX_LEASE_S", "120")),
        stuck_after_s=_durations("STUCK_AFTER", {"reserved": 600.0, "routed": 900.0}),
        stuck_sweep_every_s=_int("STUCK_SWEEP_EVERY_S", 60),
        short_job_s=float(_env("SHORT_JOB_S", "30")),
    )


def _durations(name: str, defaults: dict[str, float]) -> dict[str, float]:
    """``OMS_<name>=reserved=600,routed=900``: seconds by key, over the defaults (``key=0`` drops one)."""
    values = dict(defaults)
    for part in _list(name):
        key, _, seconds = part.partition("=")
        values[key.strip()] = float(seconds)
    return {key: seconds for key, seconds in values.items() if seconds > 0}
