"""The ``oms`` command line run as a real process, for the tests of CLI commands."""

from __future__ import annotations

import os
import subprocess
import sys

from app.config import PROJECT_ROOT


def oms(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "OMS_OWNER_PASSWORD": "cli owner password"},
        input=input,
        timeout=300,  # a CLI import of thousands of rows
    )
