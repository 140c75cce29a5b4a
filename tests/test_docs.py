"""The docs agree with the code: the generated tables (scripts/docs_tables.py) are those the code makes
now, a setting cannot be added without its row, and README.md stays a front page whose links resolve.
(The site's strict build, broken links and anchors included, is ``make docs``, part of ``make test``.)"""

from __future__ import annotations

import importlib.util
import re

import pytest
from pydantic import Field

from tests.server_process import PROJECT_DIR

spec = importlib.util.spec_from_file_location("docs_tables", PROJECT_DIR / "scripts" / "docs_tables.py")
docs_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs_tables)


def test_the_generated_tables_are_what_the_code_makes() -> None:
    assert docs_tables.regenerate(check=True) == [], "run: make docs-tables"


def test_every_setting_has_a_row_with_its_meaning() -> None:
    from sglang_hathora.settings import Settings

    table = docs_tables.settings_table()
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"| `{name.upper()}` | {field.description} |" in table


def test_a_setting_added_without_a_description_fails_the_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    import sglang_hathora.settings as settings_module

    class Undocumented(settings_module.Settings):
        new_knob: int = 3

    monkeypatch.setattr(settings_module, "Settings", Undocumented)
    with pytest.raises(ValueError, match=r"Settings\.new_knob has no description"):
        docs_tables.settings_table()


def test_a_setting_added_with_a_description_but_no_regenerated_docs_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import sglang_hathora.settings as settings_module

    class Added(settings_module.Settings):
        new_knob: int = Field(3, description="A new knob.")

    monkeypatch.setattr(settings_module, "Settings", Added)
    assert "| `NEW_KNOB` | A new knob. | `3` |" in docs_tables.settings_table()
    assert docs_tables.regenerate(check=True) == ["settings (docs/configuration.md)"]


def test_a_metric_added_to_the_registry_fails_the_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import Counter

    import sglang_hathora.metrics as metrics_module

    class More(metrics_module.Metrics):
        def __init__(self) -> None:
            super().__init__()
            self.extra = Counter("sglang_hathora_extra", "Something new", ["why"], registry=self.registry)

    monkeypatch.setattr(metrics_module, "Metrics", More)
    assert "| `sglang_hathora_extra_total` | counter | `why` | Something new |" in docs_tables.metrics_table()
    assert docs_tables.regenerate(check=True) == ["metrics (docs/observability.md)"]


def test_the_readme_is_a_front_page_whose_links_resolve() -> None:
    readme = PROJECT_DIR / "README.md"
    assert readme.stat().st_size < 12 * 1024
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme.read_text())
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    missing = [target for target in local if not (PROJECT_DIR / target).exists()]
    assert local and not missing, missing
