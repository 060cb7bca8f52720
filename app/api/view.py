"""The /graphql endpoint: authentication, GraphQL-over-HTTP media types and status codes.

Strawberry answers ``application/json`` with status 200 and plain-text errors; the GraphQL-over-HTTP
specification also wants ``application/graphql-response+json`` (with 4xx when the request could not
be executed at all), 406 for unacceptable ``Accept`` headers, and JSON error bodies throughout.

File uploads follow the GraphQL multipart request spec (``operations``, ``map``, then the file parts) and
are accepted for mutations only, from authenticated callers, within a size bound checked while reading.
CSRF: credentials are only ever the ``Authorization: Bearer …`` or ``X-API-Key`` headers, never cookies,
so a cross-site HTML form (which cannot set those headers) carries no credentials and is refused with
401 before its body is read. Strawberry (0.341) asks for no extra anti-CSRF header such as
``Apollo-Require-Preflight``, so clients send just the credential header and a multipart/form-data body.
"""

from __future__ import annotations

import json
from contextvars import ContextVar

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.parse_content_type import parse_content_type

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


class _BodyTooLarge(Exception):
    pass


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


class GraphQLView(GraphQL):
    def __init__(self, schema) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if get_settings().is_dev else None,
            multipart_uploads_enabled=True,
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
        if request.method == "POST" and _content_type(request.headers.get("content-type")) == MULTIPART:
            refused = _refuse_multipart(request, media or JSON)
            if refused is not None:
                return await refused(scope, receive, send)
            request = Request(scope, _bounded(receive, MAX_MULTIPART_BYTES))
        try:
            response = await self.run(request)
        except _BodyTooLarge:
            response = JSONResponse(
                _error_body(f"the body is over {MAX_MULTIPART_BYTES} bytes", "TOO_LARGE"),
                413,
                media_type=media or JSON,
            )
        except HTTPException as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            code = "UNAUTHENTICATED" if exc.status_code == 401 else "BAD_REQUEST"
            response = JSONResponse(
                _error_body(exc.reason, code), exc.status_code, headers=headers, media_type=media or JSON
            )
        await response(scope, receive, send)

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
        """Websocket clients authenticate with ``{"authorization": "Bearer …"}`` in connection_init."""
        params = context.connection_params or {}
        try:
            context.principal = await authenticate(
                context.db, params.get("authorization"), params.get("apiKey")
            )
        except InvalidToken:
            raise ConnectionRejectionError({"message": "invalid credentials"}) from None
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


def _refuse_multipart(request: Request, media: str) -> Response | None:
    """Refuse an upload before reading its body: no credential header (401), declared size too big (413)."""
    if not (request.headers.get("authorization") or request.headers.get("x-api-key")):
        return JSONResponse(
            _error_body("file uploads need an Authorization or X-API-Key header", "UNAUTHENTICATED"),
            401,
            headers={"WWW-Authenticate": "Bearer"},
            media_type=media,
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_MULTIPART_BYTES:
        return JSONResponse(
            _error_body(f"the body is over {MAX_MULTIPART_BYTES} bytes", "TOO_LARGE"), 413, media_type=media
        )
    return None


def _request_error(response_data: dict) -> bool:
    errors = response_data.get("errors")
    return bool(errors) and response_data.get("data") is None and all(not e.get("path") for e in errors)
