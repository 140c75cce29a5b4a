"""Where the docs' tables that could drift from the code are made: the settings (from the ``Settings``
class), the request bounds (from the rules tables) and the metrics (from the registry).

Each table sits in its page between ``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED name -->``.
``python scripts/docs_tables.py`` (``make docs-tables``) rewrites them; ``--check`` changes nothing
and exits 1 naming each table that differs (tests/test_docs.py runs it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

DOCS = PROJECT_DIR / "docs"
_MIB = 1024 * 1024


def _default(field) -> str:
    extra = field.json_schema_extra or {}
    if "docs_default" in extra:
        return extra["docs_default"]
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= _MIB and value % _MIB == 0:
        return f"`{value}` ({value // _MIB} MiB)"
    return f"`{value}`"


def settings_table() -> str:
    from sglang_hathora.settings import Settings

    rows = ["| Variable | Meaning | Default |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"Settings.{name} has no description: it is its row in docs/configuration.md")
        rows.append(f"| `{name.upper()}` | {field.description} | {_default(field)} |")
    return "\n".join(rows)


def bounds_table() -> str:
    from sglang_hathora.openai.request_bounds import markdown_table

    return markdown_table()


def metrics_table() -> str:
    """Every metric the app's registry can expose, its kind, labels and help text."""
    from sglang_hathora.metrics import Metrics

    metrics = Metrics()
    # One of each live-state gauge, so that the collector yields every family it can.
    sample = {
        "ready": 0,
        "engine_requests": 0,
        "startup": {"total": 1.0},
        "port_bound_after": 1.0,
        "negs": [{"name": "n", "scope": "s", "attached": False}],
    }
    metrics.watch_state(lambda: sample)
    # Label names of the metrics that have no sample yet (a labelled counter before its first request).
    declared = {m._name: list(m._labelnames) for m in vars(metrics).values() if hasattr(m, "_labelnames")}
    rows = ["| metric | kind | labels | what |", "|---|---|---|---|"]
    for family in metrics.registry.collect():
        labels = declared.get(family.name) or sorted({k for s in family.samples for k in s.labels if k != "le"})
        name = f"{family.name}_total" if family.type == "counter" else family.name
        shown = ", ".join(f"`{label}`" for label in labels) or "-"
        rows.append(f"| `{name}` | {family.type} | {shown} | {family.documentation} |")
    return "\n".join(rows)


TABLES = {
    "settings": ("configuration.md", settings_table),
    "bounds": ("request-bounds.md", bounds_table),
    "metrics": ("observability.md", metrics_table),
}


def _block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- BEGIN GENERATED {name}[^>]*-->\n)(.*?)(\n<!-- END GENERATED {name} -->)", re.DOTALL)


def regenerate(check: bool) -> list[str]:
    """The names of the tables that differ from the code (rewritten unless ``check``)."""
    stale = []
    for name, (page, make) in TABLES.items():
        path = DOCS / page
        text = path.read_text()
        found = _block(name).search(text)
        if found is None:
            raise ValueError(f"{path}: no <!-- BEGIN GENERATED {name} --> ... <!-- END GENERATED {name} --> block")
        table = make()
        if found.group(2) != table:
            stale.append(f"{name} ({path.relative_to(PROJECT_DIR)})")
            if not check:
                path.write_text(text[: found.start(2)] + table + text[found.end(2) :])
    return stale


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = regenerate(check)
    for item in stale:
        print(f"{'out of date' if check else 'regenerated'}: {item}")
    if check and stale:
        print("run: make docs-tables")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
