"""Everything sglang needs to run on a machine without a GPU, in one place, applied only there.

Three measured problems (shared/reference/sglang-engine.md), three fixes:
1. sglang picks its CUDA code paths unless SGLANG_USE_CPU_ENGINE=1 is set before it is imported
   (model init then fails with "No module named 'vllm'").
2. sglang's CPU engine imports ``*_cpu`` symbols from sgl_kernel, whose CPU build is not on PyPI:
   a placeholder package (``_cpu_shims/sgl_kernel``) lets it import; any call raises clearly.
3. PyPI's torchvision is linked against CUDA torch and fails beside the CPU build with
   "operator torchvision::nms does not exist"; sglang only needs ``torchvision.transforms``, so
   defining the two op schemas before torchvision's first import is enough.

sglang spawns fresh interpreters for its scheduler and detokenizer, so the fixes travel through
the environment: SGLANG_USE_CPU_ENGINE, and PYTHONPATH entries for the shim folder (whose
sitecustomize.py applies fix 3 at start-up) and for this project. Nothing in site-packages changes.
A GPU host never calls apply(): none of this touches a GPU install.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import os
import sys
from pathlib import Path

SHIM_DIR = Path(__file__).resolve().parent / "_cpu_shims"
PROJECT_DIR = SHIM_DIR.parents[2]  # sglang_hathora/engine/_cpu_shims -> the project

# Op schemas as torchvision's C++ extension declares them.
_TORCHVISION_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)


def _torchvision_needs_schemas() -> bool:
    """True for the measured mismatch: CPU-only torch beside PyPI's CUDA-linked torchvision."""
    import torch

    try:
        torchvision_version = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return False
    cpu_only_torch = torch.version.cuda is None and torch.version.hip is None
    return cpu_only_torch and "+cpu" not in torchvision_version and not _schema_exists("torchvision::nms")


def _define_torchvision_schemas() -> None:
    import torch

    if not _torchvision_needs_schemas():
        return
    library = torch.library.Library("torchvision", "DEF")
    for schema in _TORCHVISION_SCHEMAS:
        library.define(schema)
    # Keep the library object alive: dropping it would unregister the schemas.
    _define_torchvision_schemas.library = library  # type: ignore[attr-defined]


def _schema_exists(qualified_name: str) -> bool:
    import torch

    try:
        torch._C._get_schema(qualified_name, "")
    except RuntimeError:
        return False
    return True


class _TorchvisionFixFinder(importlib.abc.MetaPathFinder):
    """Defines the op schemas just before the first ``import torchvision``, then steps aside."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            _define_torchvision_schemas()
        return None  # let the normal finders load the real package


def install_torchvision_fix() -> None:
    """Arrange for the torchvision fix to run lazily (importing torch here would cost every process)."""
    if "torchvision" in sys.modules:
        return
    if not any(isinstance(finder, _TorchvisionFixFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionFixFinder())


def apply() -> None:
    """Apply the CPU fixes to this process and to every process it spawns from now on."""
    os.environ["SGLANG_USE_CPU_ENGINE"] = "1"
    entries = [str(SHIM_DIR), str(PROJECT_DIR)]
    # Extend, not replace, what the parent was given (environment propagation, not configuration).
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in entries]
    os.environ["PYTHONPATH"] = os.pathsep.join(entries + inherited)
    for entry in reversed(entries):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    install_torchvision_fix()
