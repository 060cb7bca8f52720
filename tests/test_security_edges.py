"""The control plane's edges as an outsider meets them: slugs that reach DDL, the production secret,
signup and login telling nothing more than each other, and forwarded headers from untrusted clients."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import text

from app.config import PROJECT_ROOT
from tests.conftest import SIGNUP
from tests.server_support import oms_serve

LOGIN = """
mutation($input: LoginInput!) { login(input: $input) { accessToken userErrors { field code message } } }"""


def _signup_input(slug: str, email: str | None = None) -> dict:
    return {
        "input": {
            "organization": "Org",
            "tenantName": "Brand",
            "slug": slug,
            "email": email or f"owner@{secrets.token_hex(4)}.example.com",
            "password": "correct horse battery",
        }
    }


async def _schemas(db) -> set[str]:
    async with db.engine.connect() as conn:
        return set((await conn.scalars(text("SELECT nspname FROM pg_namespace"))).all())


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t", '"', "\x00", ";drop"])
async def test_a_slug_with_a_trailing_newline_or_quote_never_reaches_ddl(gql, db, tenant_a, suffix):
    before = await _schemas(db)
    for slug in (tenant_a.slug + suffix, "fresh_" + secrets.token_hex(3) + suffix):
        data = await gql(SIGNUP, _signup_input(slug))
        errors = data["signup"]["userErrors"]
        # NUL is refused for every input by app.api.input_bounds, the rest by the slug's own rule.
        code = "INVALID_CHARACTERS" if suffix == "\x00" else "INVALID_SLUG"
        assert [(e["code"], e["field"]) for e in errors] == [(code, ["slug"])], errors
        assert data["signup"]["accessToken"] is None
    assert await _schemas(db) == before


def _oms(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_refuses_a_slug_with_a_trailing_newline(db):
    result = _oms(
        "tenant",
        "create",
        "cli_nl\n",
        "--owner-email",
        "x@cli-nl.example.com",
        "--password",
        "pw-long-enough-1",
    )
    assert result.returncode != 0
    assert "slug" in result.stderr


@pytest.mark.parametrize(
    "secret, reason",
    [
        ("change-me", "placeholder"),
        ("CHANGE-ME-please-change-me-0000000000", "placeholder"),
        ("short-but-random-9f3a", "at least 32"),
        ("a" * 40, "too few distinct"),
        ("", "must be set"),
    ],
)
def test_prod_refuses_to_start_with_a_weak_or_placeholder_secret(secret, reason):
    result = _oms("migrate", OMS_ENV="prod", OMS_SECRET_KEY=secret)
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_prod_starts_with_a_real_secret(db):
    result = _oms("migrate", OMS_ENV="prod", OMS_SECRET_KEY=secrets.token_urlsafe(48))
    assert result.returncode == 0, result.stderr


def test_the_compose_file_supplies_no_secret_key():
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    (line,) = [ln for ln in compose.splitlines() if "OMS_SECRET_KEY" in ln]
    assert ":?" in line and ":-" not in line, line  # required from the environment, no fallback


@pytest.fixture
async def client_from(app):
    """HTTP clients whose TCP peer address is the one given (each test its own, so budgets don't mix)."""
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        return clients[-1]

    yield make
    for c in clients:
        await c.aclose()


async def _post(client: httpx.AsyncClient, query: str, variables: dict) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _address() -> str:
    return "10." + ".".join(str(b) for b in secrets.token_bytes(3))


async def test_email_taken_spends_the_same_budget_as_a_failed_login(client_from, tenant_a, settings_env):
    settings_env(LOGIN_MAX_FAILURES="1")  # an address gets 4 failures
    prober = client_from(_address())
    codes = []
    for _ in range(4):
        data = await _post(prober, SIGNUP, _signup_input("p_" + secrets.token_hex(4), tenant_a.email))
        codes.append(data["signup"]["userErrors"][0]["code"])
    assert codes == ["EMAIL_TAKEN"] * 4
    # The budget is spent: signup no longer answers whether an email exists, and login is locked too.
    data = await _post(prober, SIGNUP, _signup_input("p_" + secrets.token_hex(4), tenant_a.email))
    assert data["signup"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    data = await _post(prober, SIGNUP, _signup_input("p_" + secrets.token_hex(4)))
    assert data["signup"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    login = await _post(prober, LOGIN, {"input": {"email": "nobody@x.example.com", "password": "whatever-1"}})
    assert login["login"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    # The account's owner, elsewhere, is not locked out by a stranger's probing.
    owner = client_from(_address())
    login = await _post(owner, LOGIN, {"input": {"email": tenant_a.email, "password": tenant_a.password}})
    assert login["login"]["accessToken"] and not login["login"]["userErrors"]


async def test_signups_are_limited_per_address(client_from, settings_env):
    settings_env(SIGNUPS_PER_HOUR="2")
    one = client_from(_address())
    for _ in range(2):
        data = await _post(one, SIGNUP, _signup_input("s_" + secrets.token_hex(4)))
        assert data["signup"]["userErrors"] == []
    data = await _post(one, SIGNUP, _signup_input("s_" + secrets.token_hex(4)))
    assert data["signup"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    other = client_from(_address())
    data = await _post(other, SIGNUP, _signup_input("s_" + secrets.token_hex(4)))
    assert data["signup"]["userErrors"] == []


def _failed_login(url: str, email: str, claimed_address: str) -> str:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": LOGIN, "variables": {"input": {"email": email, "password": "wrong-password"}}},
        headers={"x-forwarded-for": claimed_address},
        timeout=30,
    )
    return response.json()["data"]["login"]["userErrors"][0]["code"]


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_is_believed_only_from_configured_proxies(db, trusted):
    prefix = f"{os.environ['OMS_REDIS_PREFIX']}:{secrets.token_hex(3)}"  # a fresh budget for 127.0.0.1
    env = {"OMS_LOGIN_MAX_FAILURES": "1", "OMS_REDIS_PREFIX": prefix}
    if trusted:
        env["OMS_TRUSTED_PROXIES"] = "127.0.0.1"
    with oms_serve(**env) as (_, url):
        # Each attempt claims another address and another email: only the address budget (4) can bite.
        codes = [_failed_login(url, f"u{i}@fwd.example.com", f"203.0.113.{i + 1}") for i in range(6)]
    if trusted:  # the proxy is trusted: each claimed address is its own client
        assert codes == ["INVALID_CREDENTIALS"] * 6, codes
    else:  # an untrusted client cannot pick its address: all six count against 127.0.0.1
        assert codes == ["INVALID_CREDENTIALS"] * 4 + ["TOO_MANY_ATTEMPTS"] * 2, codes
