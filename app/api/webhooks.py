"""Webhooks in: ``POST /webhooks/channels/{channel id}`` and ``POST /webhooks/fulfilment/{location id}``.

The channel id is the global id GraphQL shows (``Channel:<tenant id>.<row id>``, base64). It only names
where the payload is going; what makes it count is the signature made with *that* channel's own
``webhook_secret``, so a payload signed with another tenant's secret, or sent to an id edited to name
another tenant, is refused. The tenant is therefore authenticated by the channel secret, never taken on
trust from the URL.

Signatures (compared in constant time):

* every channel: ``X-OMS-Signature`` as ``app/signing.py`` describes (optionally with a timestamp);
* Shopify channels also: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, raw body)>``, Shopify's own
  scheme (the channel secret is the app's client secret).

Answers: 200 processed / 202 stored but failed (JSON ``{inboxId, status, outcome, order, error}``); 400
a bad query parameter (nothing stored); 401 bad or missing signature (stored as rejected, within a budget
per sender: past it 429 with ``Retry-After``, nothing stored, see ``app/rejections.py``); 413 body over
5 MB. Every id that reaches no channel — not a channel id, an unknown or suspended tenant, an unknown
channel, or an inactive one without a valid signature — gets one and the same 404, byte for byte, and
nothing is stored: the answer does not tell which it was, and strangers cannot fill a tenant's inbox.
With ``?ack=stored`` the answer comes as soon as the payload is stored (202, status ``received``) and the
ingest runs after it; the inbox sweep replays the row if the process dies first. Platforms that resend
a webhook not answered within a few seconds (Shopify: five) are best served by it during bursts. A
payload we cannot parse still gets a 2xx: it is safely stored and will be replayed after the fix, and a
non-2xx would only make the platform resend the same bytes (and, for Shopify, eventually delete the
subscription); the error in the answer shows up in the sender's delivery log. A signed payload for an
inactive channel is stored as failed and answered 404 with why: it is replayed once the channel is on.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry import relay

from app.db import get_db
from app.fulfillment import inbound
from app.orders import arrivals, doors
from tenants.auth import tenant_cache

ACKS = ("processed", "stored")  # ?ack=: answer once ingested (default) or once safely stored


def channel_ids(gid: str) -> tuple[int, int] | None:
    """(tenant id, row id) from a channel's global id, or None when it is not one."""
    try:
        parsed = relay.GlobalID.from_id(gid)
    except Exception:
        return None
    tenant, _, row = parsed.node_id.partition(".")
    ok = parsed.type_name == "Channel" and all(
        part.isascii() and part.isdigit() and len(part) <= 18 for part in (tenant, row)
    )
    return (int(tenant), int(row)) if ok else None


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is over ``limit`` (stops reading there)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(code: int, error: str | None = None, result: doors.DoorResult | None = None, tenant_id=None):
    order = None
    if result is not None and result.order_id is not None:
        order = {
            "id": str(relay.GlobalID("Order", f"{tenant_id}.{result.order_id}")),
            "number": result.number,
            "status": result.order_status,
        }
    return JSONResponse(
        {
            "inboxId": result.inbox_id if result else None,
            "status": result.status if result else "rejected",
            "outcome": result.outcome if result else None,
            "order": order,
            "error": error if error is not None else (result.error if result else None),
        },
        code,
    )


def _unknown() -> Response:
    """The one answer for every id that reaches no channel (see the module docstring)."""
    return _answer(404, arrivals.UNKNOWN)


def too_many(retry_after: int) -> Response:
    """429 for a sender past its budget of refused payloads (``app.rejections``); nothing is stored."""
    body = {"status": "rejected", "error": "too many refused deliveries; retry later"}
    return JSONResponse(body, 429, headers={"Retry-After": str(retry_after)})


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _query_problem(request: Request) -> str | None:
    """What is wrong with the query parameters (the sender's mistake, answered 400, nothing stored)."""
    if request.query_params.get("ack", "processed") not in ACKS:
        return f"ack must be one of {', '.join(ACKS)}"
    if request.query_params.get("kind", "order") not in (*doors.KINDS, ""):
        return f"kind must be one of {', '.join(doors.KINDS)}"
    return None


async def channel_webhook(request: Request) -> Response:
    problem = _query_problem(request)
    if problem is not None:
        return _answer(400, problem)
    ids = channel_ids(request.path_params["channel_id"])
    if ids is None:
        return _unknown()
    body = await _read_body(request, doors.MAX_BODY)
    if body is None:
        return _answer(413, f"the body is over {doors.MAX_BODY} bytes")
    db = get_db()
    tenant_id, channel_id = ids
    found = await tenant_cache.get(db, tenant_id)
    if found is None or not found[2]:  # no tenant, or a suspended one: nothing to store it for
        return _unknown()
    ref = found[0]
    headers = doors.with_kind(dict(request.headers), request.query_params.get("kind"))
    arrival = await arrivals.arrive(db, ref, channel_id, body, headers, _address(request))
    if arrival.problem == arrivals.UNKNOWN:
        return _unknown()
    if arrival.retry_after is not None:
        return too_many(arrival.retry_after)
    if arrival.problem is not None:
        rejected = doors.DoorResult(arrival.inbox_id, "rejected", error=arrival.problem)
        return _answer(arrival.code, arrival.problem, rejected)
    # Authentic and stored: now processed. An inactive channel's payload is kept as failed, so it can be
    # replayed once the channel is reactivated.
    channel = doors.ChannelRef(ref, channel_id)
    if request.query_params.get("ack") == "stored":
        doors.process_later(db, channel, arrival.inbox_id, body, arrival.headers, "webhook")
        return _answer(202, result=doors.DoorResult(arrival.inbox_id, "received"), tenant_id=tenant_id)
    result = await doors.process_stored(db, channel, arrival.inbox_id, body, arrival.headers, "webhook")
    code = 200 if result.ok else (202 if arrival.active else 404)
    return _answer(code, result=result, tenant_id=tenant_id)


async def fulfilment_webhook(request: Request) -> Response:
    """``POST /webhooks/fulfilment/{location id}``: a location's connector calls back (accepted, picked,
    packed, shipped, delivered, rejected), signed with that location's connector secret; see
    ``app/fulfillment/connectors.py`` for the payload and ``app/fulfillment/inbound.py`` for the answers."""
    body = await _read_body(request, doors.MAX_BODY)
    if body is None:
        return JSONResponse({"status": "rejected", "error": f"the body is over {doors.MAX_BODY} bytes"}, 413)
    answer = await inbound.receive(
        get_db(), request.path_params["location_id"], body, dict(request.headers), _address(request)
    )
    if answer.retry_after is not None:
        return too_many(answer.retry_after)
    return JSONResponse(answer.body, answer.code)
