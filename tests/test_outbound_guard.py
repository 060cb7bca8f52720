"""The outbound guard (``app.outbound``): a tenant admin cannot point a location connector at the
loopback interface, the private network or the metadata service, neither when setting it nor at
delivery; redirects are not followed; the remote's answer body never comes back to the tenant.

conftest.py allow-lists 127.0.0.1 for the fake servers of the other tests; ``outbound_allow`` sets
``OMS_OUTBOUND_ALLOW`` for one test ("" switches the allow-list off)."""

from __future__ import annotations

import os

import pytest

from app.config import get_settings
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    ConnectorServer,
    connect,
    drain,
    events,
    gid,
    ingest,
    make_shop,
    warehouse,
)

SET_CONNECTOR = f"""mutation($input: SetLocationConnectorInput!) {{
  setLocationConnector(input: $input) {{ connector {{ url }} {ERRORS} }} }}"""
DELIVERIES = """query($id: ID!) { fulfillmentOrders(orderId: $id) {
  deliveries { event status attempts lastError responseCode } } }"""


@pytest.fixture
def outbound_allow():
    """Set ``OMS_OUTBOUND_ALLOW`` for this test (the worker runs in this process and reads it too)."""
    before = os.environ.get("OMS_OUTBOUND_ALLOW")

    def set_allow(value: str) -> None:
        os.environ["OMS_OUTBOUND_ALLOW"] = value
        get_settings.cache_clear()

    yield set_allow
    if before is None:
        os.environ.pop("OMS_OUTBOUND_ALLOW", None)
    else:
        os.environ["OMS_OUTBOUND_ALLOW"] = before
    get_settings.cache_clear()


async def _set_connector(gql, tenant, location_gid: str, url: str) -> dict:
    data = await gql(
        SET_CONNECTOR, {"input": {"locationId": location_gid, "url": url}}, api_key=tenant.api_key
    )
    return data["setLocationConnector"]


REFUSED = [
    "http://127.0.0.1:8080/internal-only/orders",
    "http://127.0.0.2/",
    "http://localhost/",  # a name that resolves to loopback
    "http://10.0.0.1/",
    "http://192.168.1.20:8080/wms",
    "http://172.16.0.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://0.0.0.0/",
    "http://2130706433/",  # 127.0.0.1 written as one number
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "ftp://wms.example.com/orders",
    "file:///etc/passwd",
    "gopher://8.8.8.8/",
    "http://user:pw@8.8.8.8/",
    "http://8.8.8.8:22/",  # a port no web service of a WMS listens on
    "https://wms.example.com:6379/",
]


async def test_connector_urls_that_lead_inside_are_refused_naming_the_field(gql, tenant_a, outbound_allow):
    outbound_allow("")
    ref = await tenant_ref(tenant_a.slug)
    loc = gid("Location", ref, await warehouse(ref, "WH", CHENGDU))
    for url in REFUSED:
        payload = await _set_connector(gql, tenant_a, loc, url)
        assert payload["connector"] is None, url
        [error] = payload["userErrors"]
        assert (error["code"], error["field"]) == ("URL_NOT_ALLOWED", ["url"]), (url, error)
    # Public addresses, standard ports, and names not resolvable yet (each delivery vets them again).
    for url in ("https://8.8.8.8/wms", "http://8.8.8.8:8080/wms", "https://wms.example.com/orders"):
        payload = await _set_connector(gql, tenant_a, loc, url)
        assert payload["userErrors"] == [] and payload["connector"]["url"] == url


async def test_a_private_deployment_allow_lists_its_internal_hosts(gql, tenant_a, outbound_allow):
    outbound_allow("10.0.0.0/8, wms.internal, 127.0.0.1")
    ref = await tenant_ref(tenant_a.slug)
    loc = gid("Location", ref, await warehouse(ref, "WH", CHENGDU))
    for url in ("http://10.1.2.3:9000/wms", "http://wms.internal:8081/orders", "http://127.0.0.1:5001/"):
        payload = await _set_connector(gql, tenant_a, loc, url)
        assert payload["userErrors"] == [], (url, payload)
    for url in ("http://192.168.1.20/", "http://169.254.169.254/", "ftp://wms.internal/"):
        [error] = (await _set_connector(gql, tenant_a, loc, url))["userErrors"]
        assert error["code"] == "URL_NOT_ALLOWED", url


async def _order_to(gql, tenant, run_jobs, url: str, external_id: str, before_ingest=None):
    """A shop whose one warehouse posts to ``url``; an order ingested and routed there. Returns the
    tenant ref, the order's row id and its deliveries as GraphQL shows them."""
    ref = await tenant_ref(tenant.slug)
    here = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {here: 5})
    await connect(gql, tenant, ref, here, url)
    if before_ingest:
        before_ingest()
    order_id = await ingest(shop, external_id)
    await drain(run_jobs)
    data = await gql(DELIVERIES, {"id": gid("Order", ref, order_id)}, api_key=tenant.api_key)
    [fo] = data["fulfillmentOrders"]
    return ref, order_id, fo["deliveries"]


async def test_delivery_vets_the_stored_url_again_and_posts_nothing_inside(
    gql, tenant_a, run_jobs, connector_server, outbound_allow
):
    """The URL was allowed when it was set (here by the allow-list); the guard holds at delivery."""
    _, _, [delivery] = await _order_to(
        gql, tenant_a, run_jobs, connector_server.url, "SSRF-1", before_ingest=lambda: outbound_allow("")
    )
    assert (delivery["status"], delivery["lastError"]) == ("failed", "address not allowed")
    assert delivery["responseCode"] is None
    assert connector_server.requests == []


async def test_a_redirect_is_not_followed(gql, tenant_a, run_jobs, connector_server):
    inside = ConnectorServer().start()
    try:
        connector_server.status = 302
        connector_server.answer_headers = {"location": inside.url.replace("/fulfilment", "/internal-only")}
        _, _, [delivery] = await _order_to(gql, tenant_a, run_jobs, connector_server.url, "SSRF-2")
        assert (delivery["status"], delivery["responseCode"]) == ("failed", 302)
        assert delivery["lastError"] == "redirect not followed"
        assert len(connector_server.requests) == 1 and inside.requests == []
    finally:
        inside.stop()


async def test_the_answer_body_never_reaches_the_tenant(gql, tenant_a, run_jobs, connector_server):
    connector_server.status = 500
    connector_server.answer_body = b"internal-only: db password hunter2"
    ref, order_id, [delivery] = await _order_to(gql, tenant_a, run_jobs, connector_server.url, "SSRF-3")
    assert (delivery["status"], delivery["responseCode"], delivery["lastError"]) == (
        "failed",
        500,
        "HTTP 500",
    )
    timeline = [(e.message, e.details) for e in await events(ref, order_id)]
    assert any("HTTP 500" in message for message, _ in timeline)
    assert not any("hunter2" in f"{message} {details}" for message, details in timeline)


async def test_the_call_goes_to_the_vetted_address_with_the_original_host(
    gql, tenant_a, run_jobs, connector_server, outbound_allow
):
    """``localhost`` resolves to allow-listed loopback: the connection goes to that address and the
    request still names the host it was given."""
    outbound_allow("127.0.0.1,::1")
    url = connector_server.url.replace("127.0.0.1", "localhost")
    _, _, [delivery] = await _order_to(gql, tenant_a, run_jobs, url, "SSRF-4")
    assert (delivery["status"], delivery["lastError"]) == ("sent", None)
    [(headers, _)] = connector_server.requests
    assert headers["host"] == f"localhost:{connector_server.server.server_address[1]}"
