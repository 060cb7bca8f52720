"""The OMS webhook signature, both ways: channel webhooks and fulfilment callbacks coming in, connector
hand-overs going out.

``X-OMS-Signature: sha256=<hex HMAC-SHA256(secret, signed)>`` where ``signed`` is the raw body, or
``<X-OMS-Timestamp>.<raw body>`` when the sender adds ``X-OMS-Timestamp`` (Unix seconds), which must then
be within five minutes of our clock so a captured request cannot be replayed later. Compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-OMS-Signature"
TIMESTAMP_HEADER = "X-OMS-Timestamp"
TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The ``X-OMS-Signature`` value for a body."""
    signed = body if timestamp is None else timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def signature_problem(
    secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> str | None:
    """Why a request is not authentic, or None when it is."""
    given = header(headers, SIGNATURE_HEADER)
    if not given:
        return f"{SIGNATURE_HEADER} is missing"
    timestamp = header(headers, TIMESTAMP_HEADER)
    if timestamp is not None:
        timestamp = timestamp.strip()
        if not (timestamp.isascii() and timestamp.isdigit()):
            return f"{TIMESTAMP_HEADER} is not Unix seconds"
        if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_S:
            return f"{TIMESTAMP_HEADER} is more than {TOLERANCE_S} seconds away from now"
    expected = sign(secret, body, timestamp)
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace")):
        return f"{SIGNATURE_HEADER} does not match the body"
    return None
