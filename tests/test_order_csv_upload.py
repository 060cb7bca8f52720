"""importOrdersCsv with a file: the GraphQL multipart request spec over real HTTP (operations, map, file)."""

from __future__ import annotations

import json

from app.api.orders.bulk import MAX_CSV_BYTES
from app.api.view import MAX_MULTIPART_BYTES, _BodyTooLarge, _bounded
from tests.door_support import CSV, IMPORT, bearer, count_orders, make_webhook_channel, upload


def codes(payload: dict) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def test_uploaded_gb18030_file_creates_orders_and_bad_lines_are_reported(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a, "pos")
    gb18030 = (CSV / "orders.csv").read_text(encoding="utf-8").encode("gb18030")
    r = await upload(client, gid, gb18030, headers=bearer(tenant_a))
    assert r.status_code == 200, r.text
    report = r.json()["data"]["importOrdersCsv"]
    assert report["userErrors"] == [] and report["inboxStatus"] == "processed", report
    assert (report["orders"], report["created"], report["failed"]) == (3, 3, 0)
    assert report["inboxMessageId"]
    assert await count_orders(tenant_a, channel.id) == 3

    r = await upload(
        client, gid, (CSV / "orders_bad.csv").read_bytes(), headers={"x-api-key": tenant_a.api_key}
    )
    bad = r.json()["data"]["importOrdersCsv"]
    assert (bad["created"], bad["failed"]) == (1, 5), bad
    lines = {e["line"]: e["message"] for e in bad["errors"]}
    assert sorted(lines) == [3, 6, 7, 8, 9]
    assert "'两' is not a whole number" in lines[3]
    assert await count_orders(tenant_a, channel.id) == 4


async def test_exactly_one_of_csv_or_file(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a, "pos")
    text = (CSV / "orders.csv").read_text(encoding="utf-8")
    both = await upload(client, gid, text.encode(), headers=bearer(tenant_a), csv=text)
    assert codes(both.json()["data"]["importOrdersCsv"]) == [("ONE_OF_CSV_OR_FILE", ["csv"])]
    neither = await gql.raw(IMPORT, {"input": {"channelId": gid}}, token=tenant_a.token)
    assert codes(neither.json()["data"]["importOrdersCsv"]) == [("CSV_REQUIRED", ["csv"])]
    # A string where the upload goes (plain JSON, no file part) is not a file.
    smuggled = await gql.raw(IMPORT, {"input": {"channelId": gid, "file": text}}, token=tenant_a.token)
    assert codes(smuggled.json()["data"]["importOrdersCsv"]) == [("INVALID_FILE", ["file"])]
    assert await count_orders(tenant_a, channel.id) == 0


async def test_file_over_the_limit_is_too_large(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a, "pos")
    big = (CSV / "orders.csv").read_bytes() + b"\n" * MAX_CSV_BYTES
    r = await upload(client, gid, big, headers=bearer(tenant_a))
    assert codes(r.json()["data"]["importOrdersCsv"]) == [("TOO_LARGE", ["file"])]
    huge = b"x" * (MAX_MULTIPART_BYTES + 1)
    r = await upload(client, gid, huge, headers=bearer(tenant_a))
    assert r.status_code == 413 and r.json()["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    assert await count_orders(tenant_a, channel.id) == 0


async def test_a_chunked_body_is_stopped_at_the_limit():
    chunks = [{"type": "http.request", "body": b"x" * 6, "more_body": True}] * 3

    async def receive() -> dict:
        return chunks.pop()

    bounded = _bounded(receive, 10)
    assert (await bounded())["body"] == b"x" * 6
    try:
        await bounded()
    except _BodyTooLarge:
        pass
    else:
        raise AssertionError("a body past the limit was let through")


async def test_another_tenants_channel_is_not_found(client, gql, tenant_a, tenant_b):
    gid, _ = await make_webhook_channel(gql, tenant_a, "pos")
    r = await upload(client, gid, (CSV / "orders.csv").read_bytes(), headers=bearer(tenant_b))
    assert codes(r.json()["data"]["importOrdersCsv"]) == [("NOT_FOUND", ["channelId"])]
    assert await count_orders(tenant_a) == 0 and await count_orders(tenant_b) == 0


async def test_unauthenticated_uploads_are_refused(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a, "pos")
    data = (CSV / "orders.csv").read_bytes()
    anonymous = await upload(client, gid, data)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = await upload(client, gid, data, headers={"authorization": "Bearer nope"})
    assert forged.status_code == 401
    # A cookie is no credential: a cross-site form could send one, so it gets nothing.
    cookie = await upload(client, gid, data, headers={"cookie": f"token={tenant_a.token}"})
    assert cookie.status_code == 401
    assert await count_orders(tenant_a, channel.id) == 0


async def test_multipart_carries_mutations_only(client, tenant_a):
    form = {"operations": json.dumps({"query": "{ viewer { role } }"}), "map": "{}"}
    files = {"_": ("", b"", "application/octet-stream")}
    r = await client.post(
        "/graphql", data=form, files=files, headers={"accept": "application/json", **bearer(tenant_a)}
    )
    assert r.status_code == 400 and "mutations only" in r.json()["errors"][0]["message"]
