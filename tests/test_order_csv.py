"""CSV order import: `oms import orders` as an operator runs it, and import_orders_csv directly."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select

from app import inbox_replay
from app.channels.models import Channel
from app.db import get_db, tenant_session
from app.errors import NotFound
from app.orders.csv_import import import_orders_csv
from app.orders.models import Order
from tests.cli_support import oms
from tests.door_support import CSV, count_orders, inbox_row, make_webhook_channel
from tests.factories import tenant_ref


async def external_ids(tenant, channel_id: int) -> list[str]:
    async with tenant_session(await tenant_ref(tenant.slug)) as session:
        rows = await session.scalars(
            select(Order.external_id).where(Order.channel_id == channel_id).order_by(Order.external_id)
        )
        return list(rows)


async def test_cli_imports_good_orders_and_reports_bad_lines(gql, tenant_a):
    _, channel = await make_webhook_channel(gql, tenant_a, "pos")
    args = ("import", "orders", "--tenant", tenant_a.slug, "--channel", channel.code, "--mapping")
    good = oms(*args, str(CSV / "mapping.json"), str(CSV / "orders.csv"))
    assert good.returncode == 0, good.stderr
    assert "3 orders: 3 created, 0 updated, 0 unchanged; 0 failed" in good.stdout
    assert "orders" in good.stderr  # the progress bar
    assert await external_ids(tenant_a, channel.id) == ["POS-1001", "POS-1002", "POS-1003"]

    again = oms(*args, str(CSV / "mapping.json"), str(CSV / "orders.csv"))
    assert again.returncode == 0 and "3 orders: 0 created, 0 updated, 3 unchanged" in again.stdout

    bad = oms(*args, str(CSV / "mapping.json"), str(CSV / "orders_bad.csv"))
    assert bad.returncode == 1
    assert "1 orders: 1 created, 0 updated, 0 unchanged; 5 failed" in bad.stdout
    for expected in (
        "line 3: 数量: '两' is not a whole number (order POS-2002 skipped)",
        "line 6: 下单时间: '2024-06-19 11:30:00' differs from line 5 of the same order",
        "line 7: 订单号: is empty",
        "line 8: 单价: 'abc' is not an amount (order POS-2004 skipped)",
        "line 9: 整单优惠: order discount 200.00 exceeds the lines' total 159.50",
    ):
        assert expected in bad.stderr, bad.stderr
    assert "POS-2001" in await external_ids(tenant_a, channel.id)
    assert await count_orders(tenant_a, channel.id) == 4


async def test_cli_names_the_tenant_and_channel_and_never_crosses_them(gql, make_tenant):
    a, b = await make_tenant("a"), await make_tenant("b")
    _, a_channel = await make_webhook_channel(gql, a, "pos")
    mapping = str(CSV / "mapping.json")
    # B has no channel with A's code: nothing is imported anywhere.
    cross = oms("import", "orders", str(CSV / "orders.csv"), "--tenant", b.slug, "--channel", a_channel.code,
                "--mapping", mapping)  # fmt: skip
    assert cross.returncode == 2 and "channel not found" in cross.stderr
    assert await count_orders(a) == 0 and await count_orders(b) == 0
    missing = oms("import", "orders", "/nonexistent.csv", "--tenant", a.slug, "--channel", a_channel.code)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


async def test_import_orders_csv_stores_the_file_first_and_reads_gb18030(gql, tenant_a):
    _, channel = await make_webhook_channel(gql, tenant_a, "pos")
    mapping = json.loads((CSV / "mapping.json").read_text())
    data = (
        (CSV / "orders.csv").read_text(encoding="utf-8").encode("gb18030")
    )  # as a Chinese back office saves
    ticks: list[int] = []

    class Bar:
        def update(self, n: int) -> None:
            ticks.append(n)

    report = await import_orders_csv(
        get_db(), await tenant_ref(tenant_a.slug), channel.id, data, mapping, progress=lambda total: Bar()
    )
    assert (report.status, report.orders, report.created, report.failed) == ("processed", 3, 3, 0)
    assert sum(ticks) == 3
    stored = await inbox_row(report.inbox_id)
    assert (stored.source, stored.body, stored.status.value) == (f"csv:{channel.id}", data, "processed")
    assert json.loads(stored.headers["x-oms-csv-mapping"]) == mapping


async def test_an_unreadable_file_is_kept_as_failed_and_the_channel_mapping_is_the_default(gql, tenant_a):
    _, channel = await make_webhook_channel(gql, tenant_a, "pos")
    ref = await tenant_ref(tenant_a.slug)
    data = (CSV / "orders.csv").read_bytes()
    report = await import_orders_csv(get_db(), ref, channel.code, data, None)  # by code, default mapping
    assert (report.status, report.orders, report.created) == ("failed", 0, 0)
    assert report.errors[0].line is None and "is not in the header" in str(report.errors[0])
    assert (await inbox_row(report.inbox_id)).status.value == "failed"

    mapping = json.loads((CSV / "mapping.json").read_text())
    async with tenant_session(ref) as session:
        row = await session.get(Channel, channel.id)
        row.settings = {"csv_mapping": mapping}
    replayed = await inbox_replay.replay(get_db(), ref, report.inbox_id)
    assert (replayed.status, replayed.outcome) == ("processed", "csv")
    assert replayed.note.startswith("3 orders: 3 created")
    assert await count_orders(tenant_a, channel.id) == 3

    with pytest.raises(NotFound):
        await import_orders_csv(get_db(), ref, f"nope-{secrets.token_hex(2)}", data, mapping)
