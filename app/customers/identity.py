"""Normalising and hashing personal identifiers, and the order fingerprint (pure, no I/O).

Hashes are HMAC-SHA256 keyed with a per-tenant key derived from the tenant id, so the same phone gives
the same hash within a tenant (orders meet) but different hashes across tenants (nothing to correlate).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping

_DIGITS = re.compile(r"\D+")
_SPACE = re.compile(r"[\s,;#\-_/\\.。()]+")  # applied after NFKC folds full-width forms


def normalise_phone(phone: str | None, country: str | None = None) -> str | None:
    """Digits only, with the country code: '+86 138-0013-8000' and '13800138000' (CN) are one phone."""
    if not phone:
        return None
    digits = _DIGITS.sub("", phone)
    if not digits:
        return None
    if phone.strip().startswith("+") or digits.startswith("00"):
        return digits.lstrip("0")
    if (country or "CN").upper() == "CN" and len(digits) == 11 and digits.startswith("1"):
        return "86" + digits
    if (country or "").upper() in ("US", "CA") and len(digits) == 10:
        return "1" + digits
    return digits


def normalise_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    if domain in ("gmail.com", "googlemail.com"):
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def normalise_text(value: str | None) -> str:
    """Lower case, full-width folded (NFKC), separators and spaces removed."""
    if not value:
        return ""
    return _SPACE.sub("", unicodedata.normalize("NFKC", value).lower())


def address_key(address: Mapping[str, str | None]) -> str:
    """One string per physical address, however the platform spelled it."""
    parts = [address.get(k) for k in ("country", "province", "city", "district", "street", "postcode")]
    return "|".join(normalise_text(p) for p in parts)


def tenant_hash(tenant_id: int, kind: str, value: str) -> str:
    key = hashlib.sha256(f"oms-identity:{tenant_id}".encode()).digest()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def fingerprint(
    tenant_id: int, *, customer_key: str, address: Mapping[str, str | None], device: str | None = None
) -> str:
    """Same customer + same address (+ same device when given) → same fingerprint: duplicates and merge
    candidates share it."""
    return tenant_hash(tenant_id, "fingerprint", f"{customer_key}|{address_key(address)}|{device or ''}")


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = _DIGITS.sub("", phone)
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
