"""The CPU fixes reach spawned interpreters through the environment and never edit site-packages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sglang_hathora.engine import cpu_compat


@pytest.fixture(autouse=True)
def restored_environ():
    """apply() sets variables that were unset; monkeypatch would not remove them again."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


CHILD_CHECK = """
import os, sys
assert os.environ["SGLANG_USE_CPU_ENGINE"] == "1"
import torchvision.transforms  # fails with 'torchvision::nms does not exist' without the fix
import sgl_kernel
assert sgl_kernel.PLACEHOLDER
try:
    sgl_kernel.copy_all_layer_kv_cache_cpu(1, 2)
except NotImplementedError as exc:
    assert "not available" in str(exc)
    print("child ok")
"""


def test_apply_reaches_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    # apply() mutates os.environ and sys.path; monkeypatch restores both afterwards.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    for key in ("SGLANG_USE_CPU_ENGINE", "PYTHONPATH"):
        monkeypatch.delenv(key, raising=False)
    cpu_compat.apply()
    assert os.environ["SGLANG_USE_CPU_ENGINE"] == "1"
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(cpu_compat.SHIM_DIR)
    # A fresh interpreter, like sglang's spawned scheduler: only the environment is inherited.
    result = subprocess.run(
        [sys.executable, "-c", CHILD_CHECK], env=dict(os.environ), cwd="/", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "child ok" in result.stdout


def test_apply_is_idempotent_and_keeps_inherited_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    cpu_compat.apply()
    cpu_compat.apply()
    entries = os.environ["PYTHONPATH"].split(os.pathsep)
    assert entries == [str(cpu_compat.SHIM_DIR), str(cpu_compat.PROJECT_DIR), "/somewhere/else"]


def test_placeholder_is_not_installed_in_site_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sgl_kernel"],
        env={"PATH": os.environ["PATH"]},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "No module named 'sgl_kernel'" in result.stderr
