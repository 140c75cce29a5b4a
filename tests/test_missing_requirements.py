"""docker/missing_requirements.py: which of our requirements the GPU image installs on top of the
official SGLang image, and that what the image already has is kept at the image's version."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT / "docker" / "missing_requirements.py"
spec = importlib.util.spec_from_file_location("missing_requirements", SCRIPT)
missing_requirements = importlib.util.module_from_spec(spec)
spec.loader.exec_module(missing_requirements)


def test_what_the_base_has_is_kept_at_its_version_whatever_the_spelling() -> None:
    have = {"prometheus-client": "0.20.0", "psutil": "5.9.8", "sglang": "0.5.23"}
    missing, kept = missing_requirements.split(
        ["# ours", "Prometheus_Client==0.26.0", "psutil==7.2.2  # pinned", "", "pydantic-settings==2.16.3"], have
    )
    assert missing == ["pydantic-settings==2.16.3"]
    assert kept == [
        "prometheus-client==0.20.0 (ours: Prometheus_Client==0.26.0)",
        "psutil==5.9.8 (ours: psutil==7.2.2)",
    ]


def test_run_against_this_interpreter_writes_both_files(tmp_path: Path) -> None:
    missing_out, constraints_out = tmp_path / "ours.txt", tmp_path / "base.txt"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(PROJECT / "requirements.txt"), str(missing_out), str(constraints_out)],
        capture_output=True,
        text=True,
        check=True,
    )
    # This venv has every requirement already: nothing to install, each kept, all pinned as constraints.
    assert missing_out.read_text() == ""
    constraints = constraints_out.read_text().splitlines()
    assert "pydantic-settings==2.16.3" in constraints and any(c.startswith("sglang==") for c in constraints)
    assert "to install: none" in result.stdout
