"""Where the GPU image decides which of our requirements to install: run by the base image's own
Python (the official SGLang image), it splits requirements.txt into what the image lacks and what it
already has. What it has is kept at the image's version (a constraint), never upgraded or shadowed,
so sglang runs with exactly the packages it was shipped with.

Usage: python3 missing_requirements.py requirements.txt MISSING_OUT CONSTRAINTS_OUT
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path


def canonical(name: str) -> str:
    """PEP 503 name: prometheus_client and Prometheus-Client are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # a distribution with broken metadata has none; pip ignores it too
            found.setdefault(canonical(name), dist.version)
    return found


def split(requirements: list[str], have: dict[str, str]) -> tuple[list[str], list[str]]:
    """(lines to install, notes on lines the base already satisfies in its own version)."""
    missing, kept = [], []
    for raw in requirements:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match is None:
            raise SystemExit(f"missing_requirements: cannot read requirement line {raw.strip()!r}")
        name = canonical(match.group(0))
        if name in have:
            kept.append(f"{name}=={have[name]} (ours: {line})")
        else:
            missing.append(line)
    return missing, kept


def main(argv: list[str]) -> int:
    requirements, missing_out, constraints_out = (Path(arg) for arg in argv)
    have = installed()
    missing, kept = split(requirements.read_text().splitlines(), have)
    missing_out.write_text("".join(f"{line}\n" for line in missing))
    constraints_out.write_text("".join(f"{name}=={version}\n" for name, version in sorted(have.items())))
    print(f"==> from the base image: {', '.join(kept) or 'none'}; to install: {', '.join(missing) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
