"""Channel adapters: platform payloads in, the unified order model (``app.channels.normalized``) out.

One module per platform; each exposes ``ADAPTERS``, a tuple of ready adapter instances (one module may
serve several platforms, e.g. Taobao and Tmall share the TOP trade API). The registry below discovers the
modules of this package, so adding a platform means adding one module (and its fixtures under
``tests/fixtures/channels/<platform>/``). Modules whose name starts with ``_`` and ``base`` are helpers.

    from app.channels.adapters import get_adapter
    order = get_adapter("taobao").parse_order(inbox_row.body)
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from app.channels.adapters.base import ChannelAdapter, ListingRef

__all__ = ["ChannelAdapter", "ListingRef", "UnknownPlatformError", "adapters", "get_adapter"]


class UnknownPlatformError(LookupError):
    pass


@cache
def adapters() -> dict[str, ChannelAdapter]:
    """Every registered adapter by platform name (imported once)."""
    found: dict[str, ChannelAdapter] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for adapter in getattr(module, "ADAPTERS", ()):
            if adapter.platform in found:
                raise RuntimeError(f"platform {adapter.platform!r} is registered twice ({module.__name__})")
            found[adapter.platform] = adapter
    return found


def get_adapter(platform: str) -> ChannelAdapter:
    try:
        return adapters()[platform]
    except KeyError:
        known = ", ".join(sorted(adapters()))
        raise UnknownPlatformError(f"no channel adapter for platform {platform!r} (known: {known})") from None
