"""The README's shell examples run as written against a real ``oms serve``, so they cannot drift.

Every shell block of README.md runs, in order, in one bash session (``set -euo pipefail``) and one
temporary directory, so variables and files flow from block to block. A block that is not an
example to run here (installing, ``make``, benches) says so with ``SKIP_MARKER`` on the line before it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess

import pytest

from app.config import PROJECT_ROOT
from tests.server_support import oms_serve

SKIP_MARKER = "<!-- not run by tests -->"
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
BLOCK_SEPARATOR = "@@readme-block@@"


def shell_blocks(markdown: str) -> list[tuple[int, str, bool]]:
    """(line number, code, skipped) of every fenced shell block, in order."""
    blocks, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        fence = re.fullmatch(r"```\s*(\w*)\s*", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        if fence.group(1) in SHELL_LANGUAGES:
            before = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
            blocks.append((i + 1, "\n".join(lines[i + 1 : end]), before == SKIP_MARKER))
        i = end + 1
    return blocks


def json_documents(text: str) -> list:
    """The JSON documents a block printed, one after another (curl -s adds no newline)."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    return docs


@pytest.fixture
def server_address(db):
    with oms_serve() as (_, url):
        yield url.removeprefix("http://")


def test_readme_shell_examples_work_as_written(server_address, tmp_path):
    missing = [tool for tool in ("bash", "curl", "openssl", "python3") if not shutil.which(tool)]
    assert not missing, f"the README's examples need {missing}"
    readme = (PROJECT_ROOT / "README.md").read_text()
    examples = [(line, code) for line, code, skipped in shell_blocks(readme) if not skipped]
    assert examples, "no runnable shell example found in README.md"

    # A fresh tenant and owner per run; the README's fixed ones are taken after the first run.
    unique = f"readme{secrets.token_hex(4)}"
    script = ["set -euo pipefail"]
    for _, code in examples:
        code = code.replace("localhost:8000", server_address)
        code = code.replace("me@acme.example", f"me@{unique}.example")
        code = re.sub(r"(slug\W+)acme\b", rf"\g<1>{unique}", code)
        script += [f"printf '\\n{BLOCK_SEPARATOR}\\n'", code]
    script.append(f"printf '\\n{BLOCK_SEPARATOR}\\n'")
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs = done.stdout.split(BLOCK_SEPARATOR + "\n")[1:]
    report = f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0 and len(outputs) == len(examples) + 1, report

    answers = []  # every JSON document printed, in order; curl -w adds the HTTP status as a number
    for (line, _), output in zip(examples, outputs[:-1], strict=True):
        try:
            docs = json_documents(output)
        except json.JSONDecodeError:
            raise AssertionError(f"README.md:{line}: the block printed more than JSON\n{report}") from None
        for doc in docs:
            if isinstance(doc, dict):
                assert "errors" not in doc, f"README.md:{line}: {doc}"
                results = (doc.get("data") or {}).values()
                assert not any(isinstance(r, dict) and r.get("userErrors") for r in results), (
                    f"README.md:{line}: {doc}"
                )
        answers += docs

    def first(key: str):
        found = [
            (i, doc)
            for i, doc in enumerate(answers)
            if isinstance(doc, dict) and key in (doc.get("data") or doc)
        ]
        assert found, f"no answer with {key!r} printed\n{report}"
        return found[0]

    _, signup = first("signup")
    assert signup["data"]["signup"]["accessToken"], signup
    _, viewer = first("viewer")
    assert (
        viewer["data"]["viewer"]["role"] == "owner" and viewer["data"]["viewer"]["tenant"]["slug"] == unique
    )
    at, webhook = first("inboxId")
    assert answers[at + 1 : at + 2] == [200], answers
    assert webhook["status"] == "processed" and webhook["outcome"] == "created", webhook
    assert webhook["order"]["number"], webhook
