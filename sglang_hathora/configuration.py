"""Where a bad configuration stops the process at start: one line naming each bad variable, exit 2.

Never a traceback, and never a secret's value in the line.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from sglang_hathora.settings import Settings


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad variable, what was wrong and what it got (never secret values)."""
    parts = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        got = "" if "secret" in name.lower() or "key" in name.lower() else f" (got {item.get('input')!r})"
        parts.append(f"{name}: {item['msg']}{got}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        print(describe_validation_error(exc), file=sys.stderr)
        raise SystemExit(2) from None
