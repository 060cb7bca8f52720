"""A real ``oms serve`` process for tests that need what only the real server does (uvicorn settings,
processes, proxy headers): started on a free port against the test database, stopped afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from app.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def oms_serve(*args: str, **env: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``oms serve [args]`` with ``OMS_*`` overrides in ``env``; yields the process and its base URL once
    ``/readyz`` answers 200."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise AssertionError("oms serve did not come up")
            time.sleep(0.2)
        yield server, url
    finally:
        server.terminate()
        server.wait(timeout=30)
