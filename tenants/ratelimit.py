"""Failed-login rate limiting in Redis: per email and per client address, over a sliding window.

Signup and invitation acceptance spend the same per-address budget as failed sign-ins."""

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


def _signup_key(ip: str) -> str:
    return f"{get_settings().redis_prefix}:signups:ip:{ip}"


async def check_signup(redis, ip: str) -> None:
    """Signups per address per hour, and the address's failed sign-in budget: a signup refused because
    the email is taken tells as much as a failed login, so both probes spend the same budget."""
    settings = get_settings()
    signups, failures = await redis.mget(_signup_key(ip), _keys("", ip)[1])
    if int(signups or 0) >= settings.signups_per_hour:
        raise UserError("TOO_MANY_ATTEMPTS", "too many signups from this address; try again in an hour")
    if int(failures or 0) >= settings.login_max_failures * 4:
        raise UserError(
            "TOO_MANY_ATTEMPTS",
            f"too many failed attempts; try again in {settings.login_window_s // 60} minutes",
        )


async def record_signup(redis, ip: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(_signup_key(ip), 0, ex=3600, nx=True)
        pipe.incr(_signup_key(ip))
        await pipe.execute()


async def record_signup_failure(redis, ip: str) -> None:
    """An email-taken answer spends the address's failed sign-in budget (not the account's: a stranger
    probing an address must not lock its owner out)."""
    await record_address_failure(redis, ip)


async def check_address(redis, ip: str) -> None:
    """Refuse an address that spent its failed sign-in budget (doors other than login: invitations)."""
    settings = get_settings()
    if int(await redis.get(_keys("", ip)[1]) or 0) >= settings.login_max_failures * 4:
        raise UserError(
            "TOO_MANY_ATTEMPTS",
            f"too many failed attempts; try again in {settings.login_window_s // 60} minutes",
        )


async def record_address_failure(redis, ip: str) -> None:
    window = get_settings().login_window_s
    key = _keys("", ip)[1]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
        await pipe.execute()
