"""Failed-login rate limiting in Redis: per email and per client address, over a sliding window."""

from __future__ import annotations

from app.config import get_settings
from app.errors import UserError


def _keys(email: str, ip: str) -> tuple[str, str]:
    prefix = get_settings().redis_prefix
    return f"{prefix}:login-fail:email:{email}", f"{prefix}:login-fail:ip:{ip}"


async def check_login(redis, email: str, ip: str) -> None:
    settings = get_settings()
    by_email, by_ip = await redis.mget(_keys(email, ip))
    # An address gets more room than one account: offices share an address.
    if (
        int(by_email or 0) >= settings.login_max_failures
        or int(by_ip or 0) >= settings.login_max_failures * 4
    ):
        raise UserError(
            "TOO_MANY_ATTEMPTS",
            f"too many failed sign-ins; try again in {settings.login_window_s // 60} minutes",
        )


async def record_login_failure(redis, email: str, ip: str) -> None:
    window = get_settings().login_window_s
    async with redis.pipeline(transaction=True) as pipe:
        for key in _keys(email, ip):
            pipe.set(key, 0, ex=window, nx=True)  # starts the window (EXPIRE NX needs Redis 7)
            pipe.incr(key)
        await pipe.execute()


async def clear_login(redis, email: str, ip: str) -> None:
    await redis.delete(_keys(email, ip)[0])
