"""The parser and validation caches of the schema: repeated documents skip parsing and validation, and
the depth, alias and token limits still hold for cached documents."""

from __future__ import annotations

from strawberry.extensions.parser_cache import _get_parse_cache

from app.api import validation
from app.api.schema import CACHE_SIZE, MAX_ALIASES, MAX_TOKENS


def _hits() -> tuple[int, int]:
    return _get_parse_cache(CACHE_SIZE).cache_info().hits, validation.cache_info().hits


async def test_a_repeated_document_is_parsed_and_validated_once(gql, tenant_a):
    doc = "{ viewer { role tenant { slug } } }  # cache probe"
    await gql(doc, token=tenant_a.token)
    parsed, validated = _hits()
    for _ in range(3):
        assert (await gql(doc, token=tenant_a.token))["viewer"]["role"] == "owner"
    assert _hits() == (parsed + 3, validated + 3)


async def test_limits_still_hold_for_cached_documents(gql, tenant_a):
    aliases = "{ " + " ".join(f"a{i}: viewer {{ role }}" for i in range(MAX_ALIASES + 1)) + " }"
    tokens = "{ viewer { " + "role " * MAX_TOKENS + "} }"
    for _ in range(2):  # the second time from the caches
        r = await gql.raw(aliases, token=tenant_a.token)
        assert r.status_code == 400 and "aliases" in r.json()["errors"][0]["message"]
        r = await gql.raw(tokens, token=tenant_a.token)
        assert r.status_code == 400 and "token" in r.json()["errors"][0]["message"].lower()
