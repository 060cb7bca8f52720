"""Credentials: Argon2 password hashes, JWT access tokens (joserfc), opaque refresh tokens, API keys.

Pure functions apart from the thread hop for Argon2 (deliberately slow, so kept off the event loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from app.config import get_settings

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
ACCESS_ALG = "HS256"
API_KEY_PREFIX = "oms_"


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _key() -> OctKey:
    return OctKey.import_key(get_settings().secret_key)


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    tenant_id: int
    role: str


class InvalidToken(Exception):
    """The bearer token is malformed, badly signed or expired."""


def issue_access_token(user_id: int, tenant_id: int, role: str, ttl_s: int | None = None) -> str:
    now = int(time.time())
    ttl = get_settings().access_token_ttl_s if ttl_s is None else ttl_s
    claims = {
        "sub": str(user_id),
        "tid": tenant_id,
        "role": role,
        "iat": now,
        "exp": now + ttl,
        "typ": "access",
    }
    return jwt.encode({"alg": ACCESS_ALG}, claims, _key())


_REGISTRY = jwt.JWTClaimsRegistry(
    leeway=5, exp={"essential": True}, sub={"essential": True}, typ={"essential": True, "value": "access"}
)


def decode_access_token(token: str) -> AccessClaims:
    try:
        decoded = jwt.decode(token, _key(), algorithms=[ACCESS_ALG])
        _REGISTRY.validate(decoded.claims)
        claims = decoded.claims
        return AccessClaims(
            user_id=int(claims["sub"]), tenant_id=int(claims["tid"]), role=str(claims["role"])
        )
    except (JoseError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> tuple[str, str, str]:
    """Returns (full key shown once, prefix stored in clear for lookup, sha256 of the secret part)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{API_KEY_PREFIX}{prefix}_{secret}", prefix, sha256_hex(secret)


def split_api_key(key: str) -> tuple[str, str] | None:
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, _, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if len(prefix) != 12 or not secret:
        return None
    return prefix, secret


def api_key_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(sha256_hex(secret), stored_hash)
