"""``oms serve --workers N``: N API processes share one port (the deployment the ingest bench measures)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server_support import oms_serve


def _children(pid: int) -> list[int]:
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            out.append(int(status.parent.name))
    return out


def test_serve_with_two_workers_runs_two_api_processes_on_one_port(db):
    with oms_serve("--workers", "2") as (server, url):
        workers = [
            pid for pid in _children(server.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(workers) == 2, workers
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
