"""docs/clients.md's clients table names the versions tests/test_clients.py really runs: those of the lock files."""

from __future__ import annotations

import json
import re

from tests.server_process import PROJECT_DIR

PYTHON_CLIENTS = ("pydantic-ai-slim", "openai-agents", "openai")
JS_CLIENTS = ("ai", "@ai-sdk/openai-compatible", "@ai-sdk/openai")


def pinned() -> dict[str, str]:
    lock = (PROJECT_DIR / "requirements" / "clients-lock.txt").read_text()
    versions = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", lock, re.MULTILINE))
    packages = json.loads((PROJECT_DIR / "tests" / "clients" / "js" / "package-lock.json").read_text())["packages"]
    js = {name: packages[f"node_modules/{name}"]["version"] for name in JS_CLIENTS}
    return {**{name: versions[name] for name in PYTHON_CLIENTS}, **js}


def table_rows() -> list[str]:
    readme = (PROJECT_DIR / "docs" / "clients.md").read_text()
    table = readme[readme.index("| client | version | what runs | result |") :].split("\n\n", 1)[0]
    return table.splitlines()[2:]


def test_every_client_in_the_table_at_its_pinned_version() -> None:
    versions = pinned()
    rows = {row.split(" | ")[0]: row.split(" | ")[1] for row in table_rows()}
    expected = {
        "[pydantic-ai]": versions["pydantic-ai-slim"],
        "[OpenAI Agents SDK]": versions["openai-agents"],
        "`openai` (Python)": versions["openai"],
        "Vercel AI SDK: `ai` + `@ai-sdk/openai-compatible`": " + ".join(
            versions[name] for name in ("ai", "@ai-sdk/openai-compatible")
        ),
        "Vercel AI SDK: `@ai-sdk/openai`": versions["@ai-sdk/openai"],
    }
    found = {}
    for label in expected:
        matches = [cells for name, cells in rows.items() if name.lstrip("| ").startswith(label)]
        assert len(matches) == 1, (label, list(rows))
        found[label] = matches[0]
    assert found == expected
    assert len(rows) == len(expected), list(rows)  # no client listed that the tests do not run
