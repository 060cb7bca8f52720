"""The /graphql endpoint: authentication, GraphQL-over-HTTP media types and status codes.

Strawberry answers ``application/json`` with status 200 and plain-text errors; the GraphQL-over-HTTP
specification also wants ``application/graphql-response+json`` (with 4xx when the request could not
be executed at all), 406 for unacceptable ``Accept`` headers, and JSON error bodies throughout.

File uploads follow the GraphQL multipart request spec (``operations``, ``map``, then the file parts) and
are accepted for mutations only, from authenticated callers, within a size bound checked while reading.
Every body is bounded the same way: MAX_ANONYMOUS_BYTES without a credential header, MAX_MULTIPART_BYTES
with one (the credential is checked, in ``get_context``, before the body is read, so a forged one gets 401
and no larger bound). JSON must be UTF-8, an object, and at most MAX_JSON_DEPTH levels deep.
CSRF: credentials are only ever the ``Authorization: Bearer …`` or ``X-API-Key`` headers, never cookies,
so a cross-site HTML form (which cannot set those headers) carries no credentials and is refused with
401 before its body is read. Strawberry (0.341) asks for no extra anti-CSRF header such as
``Apollo-Require-Preflight``, so clients send just the credential header and a multipart/form-data body.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from datetime import timedelta

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.parse_content_type import parse_content_type
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

from app.api.context import Context
from app.api.errors import with_codes
from app.api.orders.bulk import MAX_CSV_BYTES
from app.api.schema import MAX_TOKENS  # checking a multipart operation's type parses it, bounded too
from app.config import get_settings
from app.db import get_db
from app.logs import request_id_var
from app.redis import get_redis
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from tenants.auth import InvalidToken, authenticate

_media_var: ContextVar[str] = ContextVar("graphql_media", default="application/json")
GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MULTIPART = "multipart/form-data"
MAX_MULTIPART_BYTES = MAX_CSV_BYTES + 1024 * 1024  # the file, plus operations, map and part headers
MAX_ANONYMOUS_BYTES = 64 * 1024  # login, signup, a query: plenty
MAX_QUERY_STRING_BYTES = 16 * 1024  # GET requests; many proxies refuse longer URLs anyway
MAX_JSON_DEPTH = 64  # deeper JSON exhausts recursion in the decoder or in GraphQL's input coercion
# Websockets (graphql-transport-ws only). The message size is enforced by uvicorn (``ws_max_size`` where
# the app is served: ``oms serve``, ``oms dev``), which closes the connection with 1009.
MAX_WS_MESSAGE_BYTES = 64 * 1024
MAX_OPERATIONS_PER_CONNECTION = 20  # subscriptions (and queries) in flight on one connection
CONNECTION_INIT_TIMEOUT = timedelta(seconds=5)  # socket open, no connection_init yet: closed with 4408


class _BodyTooLarge(Exception):
    pass


class _UnreadableJSON(json.JSONDecodeError):
    """JSON we refuse to decode; a JSONDecodeError, so websocket messages get the protocol's 4400 too."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "", 0)


def _bounded(receive: Receive, limit: int) -> Receive:
    """``receive`` that stops a body (even a chunked one without Content-Length) past ``limit`` bytes."""
    seen = 0

    async def bounded() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge
        return message

    return bounded


def _has_credentials(request: Request) -> bool:
    """A credential header was sent: ``authenticate`` then either finds a principal or raises (401)."""
    return bool(request.headers.get("authorization") or request.headers.get("x-api-key"))


def _body_limit(request: Request) -> int:
    return MAX_MULTIPART_BYTES if _has_credentials(request) else MAX_ANONYMOUS_BYTES


def _nested_deeper_than(value: object, limit: int) -> bool:
    """Level by level, without recursion (the value may be as deep as the decoder allowed)."""
    layer, depth = [value], 0
    while layer:
        layer = [item for item in layer if isinstance(item, (dict, list))]
        if not layer:
            return False
        depth += 1
        if depth > limit:
            return True
        layer = [child for item in layer for child in (item.values() if isinstance(item, dict) else item)]
    return False


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


def _is_mutation(query: str | None, operation_name: str | None) -> bool:
    if not query:
        return False
    try:
        operation = get_operation_ast(parse(query, max_tokens=MAX_TOKENS), operation_name)
    except GraphQLError:
        return False
    return operation is not None and operation.operation == OperationType.MUTATION


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when nothing acceptable was offered."""
    if not accept:
        return JSON  # legacy clients send no Accept header
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in offered:
        if media == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


def _error_body(message: str, code: str | None = None) -> dict:
    error: dict = {"message": message}
    if code:
        error["extensions"] = {"code": code}
    return {"errors": [error]}


class _TransportWSHandler(BaseGraphQLTransportWSHandler):
    """Strawberry's graphql-transport-ws handler; past MAX_OPERATIONS_PER_CONNECTION a subscribe gets an
    ``error`` message with a code (Strawberry's has none) and the connection stays open for the others."""

    async def handle_subscribe(self, message) -> None:
        full = len(self.operations) >= MAX_OPERATIONS_PER_CONNECTION
        if self.connection_acknowledged and full and message["id"] not in self.operations:
            error = _error_body(
                f"at most {MAX_OPERATIONS_PER_CONNECTION} subscriptions at once on one connection:"
                " complete one first",
                "TOO_MANY_SUBSCRIPTIONS",
            )
            await self.send_message({"id": message["id"], "type": "error", "payload": error["errors"]})
            return
        await super().handle_subscribe(message)


class GraphQLView(GraphQL):
    graphql_transport_ws_handler_class = _TransportWSHandler

    def __init__(self, schema) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if get_settings().is_dev else None,
            multipart_uploads_enabled=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),  # the legacy graphql-ws: 4406
            connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
            max_subscriptions_per_connection=MAX_OPERATIONS_PER_CONNECTION,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        request = Request(scope, receive)
        media = negotiate(request.headers.get("accept"))
        wants_ide = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if media is None and not wants_ide:
            response: Response = JSONResponse(
                _error_body(f"Accept must allow {GRAPHQL_RESPONSE} or {JSON}", "NOT_ACCEPTABLE"), 406
            )
            return await response(scope, receive, send)
        _media_var.set(media or JSON)
        limit = _body_limit(request)
        refused = _refuse_before_reading(request, media or JSON, limit)
        if refused is not None:
            return await refused(scope, receive, send)
        try:
            response = await self.run(Request(scope, _bounded(receive, limit)))
        except _BodyTooLarge:
            response = _too_large(limit, media or JSON)
        except HTTPException as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            code = "UNAUTHENTICATED" if exc.status_code == 401 else "BAD_REQUEST"
            response = JSONResponse(
                _error_body(exc.reason, code), exc.status_code, headers=headers, media_type=media or JSON
            )
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        """UTF-8 only (as GraphQL over HTTP wants), and at most MAX_JSON_DEPTH levels deep."""
        try:
            value = json.loads(data.decode() if isinstance(data, bytes) else data)
        except UnicodeDecodeError:
            raise _UnreadableJSON("the body is not valid UTF-8") from None
        except RecursionError:
            value = None
        else:
            if not _nested_deeper_than(value, MAX_JSON_DEPTH):
                return value
        raise _UnreadableJSON(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")

    def parse_json(self, data: str | bytes) -> dict:
        """Every JSON a request carries (the body, GET ``variables``/``extensions``, multipart
        ``operations``/``map``) is an object; Strawberry fails with a 500 on ``null`` or a number."""
        try:
            value = self.decode_json(data)
        except _UnreadableJSON as exc:
            raise HTTPException(400, exc.msg) from None
        except json.JSONDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if isinstance(value, list):
            raise HTTPException(400, "expected a JSON object, got an array (batching is not supported)")
        if not isinstance(value, dict):
            raise HTTPException(400, f"expected a JSON object, got {_json_kind(value)}")
        return value

    async def parse_http_body(self, request):
        """As Strawberry's, but a multipart body (an upload) may only carry mutations."""
        data = await super().parse_http_body(request)
        if _content_type(request.content_type) == MULTIPART:
            for item in data if isinstance(data, list) else [data]:
                if not _is_mutation(item.query, item.operation_name):
                    raise HTTPException(400, "multipart/form-data (file uploads) carries mutations only")
        return data

    async def get_context(self, request: Request | WebSocket, response) -> Context:
        db = get_db()
        if isinstance(request, WebSocket):
            principal = None  # resolved from connection_init's payload in on_ws_connect
        else:
            try:
                principal = await authenticate(
                    db, request.headers.get("authorization"), request.headers.get("x-api-key")
                )
            except InvalidToken as exc:
                raise HTTPException(401, f"invalid credentials: {exc}") from None
        return Context(
            request=request,
            response=response,
            db=db,
            redis=await get_redis(),
            principal=principal,
            request_id=request_id_var.get(),
        )

    async def on_ws_connect(self, context: Context):
        """Websocket clients authenticate with ``{"authorization": "Bearer …"}`` (or ``{"apiKey": …}``)
        in connection_init. Every subscription needs a principal, so a connection without a valid
        credential is closed with 4403 at once rather than kept open for nothing."""
        params = context.connection_params or {}
        authorization, api_key = params.get("authorization"), params.get("apiKey")
        try:
            if not all(isinstance(value, str | None) for value in (authorization, api_key)):
                raise InvalidToken("credentials are strings")
            context.principal = await authenticate(context.db, authorization, api_key)
        except InvalidToken:
            raise ConnectionRejectionError({"message": "invalid credentials"}) from None
        if context.principal is None:
            raise ConnectionRejectionError({"message": "credentials required"})
        return None

    async def process_result(self, request, result):
        with_codes(result.errors)
        return await super().process_result(request, result)

    def create_response(self, response_data, sub_response: Response) -> Response:
        response = super().create_response(response_data, sub_response)
        media = _media_var.get()
        if media == GRAPHQL_RESPONSE and isinstance(response_data, dict) and _request_error(response_data):
            # The request never executed (syntax, validation, limits): no data entry and a 400.
            response_data = {k: v for k, v in response_data.items() if k != "data"}
            response.body = self.encode_json(response_data).encode()
            response.headers["content-length"] = str(len(response.body))
            response.status_code = 400
        response.headers["content-type"] = media
        return response

    def encode_json(self, data) -> str:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _content_type(header: str | None) -> str:
    return parse_content_type(header or "")[0].lower()


def _refuse_before_reading(request: Request, media: str, limit: int) -> Response | None:
    """Refuse before reading the body: an upload without a credential header (401), a declared size over
    ``limit`` (413), a query string over MAX_QUERY_STRING_BYTES (414)."""
    is_upload = request.method == "POST" and _content_type(request.headers.get("content-type")) == MULTIPART
    if is_upload and not _has_credentials(request):
        return JSONResponse(
            _error_body("file uploads need an Authorization or X-API-Key header", "UNAUTHENTICATED"),
            401,
            headers={"WWW-Authenticate": "Bearer"},
            media_type=media,
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return _too_large(limit, media)
    if len(request.scope.get("query_string", b"")) > MAX_QUERY_STRING_BYTES:
        message = f"the query string is over {MAX_QUERY_STRING_BYTES} bytes: POST the request instead"
        return JSONResponse(_error_body(message, "TOO_LARGE"), 414, media_type=media)
    return None


def _too_large(limit: int, media: str) -> Response:
    who = " for anonymous requests" if limit == MAX_ANONYMOUS_BYTES else ""
    message = f"the body is over {limit} bytes{who}"
    return JSONResponse(_error_body(message, "TOO_LARGE"), 413, media_type=media)


def _request_error(response_data: dict) -> bool:
    errors = response_data.get("errors")
    return bool(errors) and response_data.get("data") is None and all(not e.get("path") for e in errors)
