"""Where the CPU install says, in a line or two, what of a package's requirements it left out and why.

``python scripts/left_out.py sglang`` (scripts/install.sh): sglang's requirements for this platform
that are not installed (its CUDA kernels, optional integrations), or installed at another version (the
CPU build of torch). pip's resolver lists the same as an ERROR at the end of the CPU lock's install;
they are left out on purpose, so the install shows these lines instead (pip's in its log).
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement


def left_out(package: str) -> tuple[list[str], list[str]]:
    """(requirements not installed, requirements installed at another version)."""
    missing, other = [], []
    for text in metadata.requires(package) or []:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(requirement.name)
            continue
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            other.append(f"{requirement.name} {version} (sglang asks {requirement.specifier})")
    return missing, other


def main() -> int:
    package = sys.argv[1]
    missing, other = left_out(package)
    if missing:
        print(
            f"install: {len(missing)} of {package}'s requirements left out on purpose, unused by the CPU engine "
            f"(CUDA kernels, optional integrations): {', '.join(sorted(missing))}"
        )
    if other:
        print(f"install: kept for the CPU engine: {', '.join(other)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
