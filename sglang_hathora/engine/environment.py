"""Where the engine's process environment is prepared: the device and (on CPU) the fixes, all set
before SGLang is imported and before any engine process starts, so that the forkserver
(engine/forkserver.py) and every child inherit them.

``start_forkserver_early`` runs in ``serve_hathora.py`` before the server imports its web stack, so
that the forkserver starts 0.6 s sooner (those imports' time on this machine); the engine's load calls
``prepare_for`` and ``forkserver.start`` again, and both are idempotent.
"""

from __future__ import annotations

import os

from sglang_hathora.engine import cpu_compat, forkserver
from sglang_hathora.settings import Settings

# A GPU needs its driver's device files: without any, "auto" means the CPU, known without importing
# torch (1.1-1.5 s here).
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def resolve_device(requested: str) -> str:
    return cheap_device(requested) or _torch_device()


def cheap_device(requested: str, device_files: tuple[str, ...] | None = None) -> str | None:
    """The device when it is known without importing torch, else None."""
    if requested != "auto":
        return requested
    files = GPU_DEVICE_FILES if device_files is None else device_files
    return None if any(os.path.exists(path) for path in files) else "cpu"


def _torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_for(device: str) -> None:
    """On the CPU, the fixes (SGLANG_SANITIZE_NAN_LOGITS is left unset: engine/grammar_guard.py)."""
    if device == "cpu":
        cpu_compat.apply()


def start_forkserver_early(settings: Settings) -> bool:
    """Before the server's own imports: prepare and start the forkserver when it is on and the device is
    known without torch (a possible GPU waits for the load, which imports torch anyway). Logging must be
    configured first: the forkserver takes its configuration file from the environment."""
    device = cheap_device(settings.device)
    if device is None or not forkserver.enabled(settings.engine_forkserver, device):
        return False
    prepare_for(device)
    forkserver.start()
    return True
