"""Where SGLang's child processes are started from a preloaded forkserver instead of ``spawn``.

Why: SGLang 0.5.23 forces multiprocessing ``spawn`` for its scheduler and detokenizer, and each fresh
interpreter re-imports sglang, torch and transformers (about 19 CPU-seconds each on this 2-core machine)
although the server imported all of it seconds before: most of a 24-27 s cold start was that. Here a
Python forkserver is started before the server imports its web stack (serve_hathora.py), with the
scheduler's, the detokenizer's and the model modules to preload, so it imports them on the second core
while the server imports SGLang on the first; the children are then forks of it (measured, two starts
one after the other: ready 13.9 s against 23.9 s with spawn; 9.1-10.0 s on a quieter hour, before
the forkserver was started ahead of the web stack).

How SGLang is touched, without changing its files: after the server imported SGLang, the ``mp`` name
in ``sglang.srt.entrypoints.engine`` (its ``import multiprocessing as mp``) is replaced by a view of
multiprocessing whose ``Process`` comes from the forkserver. ``Pipe`` and everything else stay
multiprocessing's own.

CUDA cannot survive a fork once initialised. What ensures nothing initialises it before the fork:
- the forkserver is a fresh interpreter (fork and exec), not a fork of the server (which may have
  imported torch to pick the device), and it only imports modules, which is not known to touch a
  device; what guarantees it is the next point:
- every child checks at its start, before SGLang's code runs, that CUDA is not initialised in it (and
  torch's own bad-fork flag), and refuses with a RuntimeError naming the setting otherwise;
- and the path is on by default on CPU only (ENGINE_FORKSERVER=auto): on a CUDA host it stays off until
  ENGINE_FORKSERVER=on, because it cannot be verified on machines without a GPU.

The environment: a forkserver's children inherit the forkserver's environment, from when it started,
but SGLang sets variables for its children just before it starts them (SGLANG_RUN_ID, the Prometheus
directory, NUMA and memory-saver settings): each child takes the environment its ``start()`` saw.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
from typing import Any

from sglang_hathora.engine import grammar_guard
from sglang_hathora.engine.cpu_compat import PROJECT_DIR

# What SGLang's children import (the scheduler pulls in torch, transformers and the model code; the
# registry imports every model module: 1.5 s in each scheduler otherwise, measured with -X importtime).
PRELOAD = (
    "sglang_hathora.engine.forkserver_preload",  # first: the collector off, the server's logging
    "sglang.srt.managers.scheduler",
    "sglang.srt.managers.detokenizer_manager",
    "sglang.srt.model_executor.model_runner",
    "sglang.srt.models.registry",
    "sglang_hathora.observability",
)
_CONTEXT = multiprocessing.get_context("forkserver")
DETOKENIZER_TARGET = "run_detokenizer_process"  # sglang.srt.managers.detokenizer_manager's entry point


def enabled(setting: str, device: str) -> bool:
    """ENGINE_FORKSERVER: on, off, or auto (on for the CPU only, see the module's docstring)."""
    if setting == "auto":
        return device == "cpu"
    return setting == "on"


def start(preload: tuple[str, ...] = PRELOAD) -> None:
    """Start the forkserver now, preloading ``preload`` in it: call it once this process's environment
    is what the children need (the CPU fixes applied), before SGLang is imported here, and from the
    main thread (the forkserver ends when the thread that started it does: forkserver_preload.py).
    It takes a few milliseconds: the imports run in the forkserver."""
    path = os.environ.get("PYTHONPATH", "")
    if str(PROJECT_DIR) not in path.split(os.pathsep):  # the forkserver imports this module's children
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_DIR), path) if p)
    os.environ["SGLANG_HATHORA_SERVER_PID"] = str(os.getpid())
    _CONTEXT.set_forkserver_preload(list(preload))
    multiprocessing.forkserver.ensure_running()


def install(preloaded: bool) -> None:
    """SGLang's engine starts its children from the forkserver from now on (after it is imported), or,
    with ``preloaded`` false, spawns them as before but with SIGINT ignored (``QuietSpawnProcess``)."""
    import sglang.srt.entrypoints.engine as sglang_engine

    sglang_engine.mp = _Multiprocessing(PreloadedProcess if preloaded else QuietSpawnProcess)  # type: ignore[assignment]


def ignore_terminal_interrupt() -> None:
    """Ctrl+C in a terminal sends SIGINT to the whole process group, SGLang's children included: each
    printed a KeyboardInterrupt traceback (about 30 lines) while the server was stopping cleanly. The
    server owns the stop (it ends its children itself, as for SIGTERM), so its children ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PreloadedProcess(_CONTEXT.Process):  # type: ignore[name-defined,misc]
    """A forkserver child that runs with the environment its start() saw and refuses an initialised CUDA."""

    def start(self) -> None:
        self._environment = dict(os.environ)
        super().start()

    def run(self) -> None:
        import gc

        import setproctitle

        # The preloaded heap (~750k objects) out of the collector's sight, then the collector back on (the
        # preload had it off): every full collection walked that heap, and in a fork each walk also copies
        # the pages it touches (copy-on-write). Measured in the scheduler: loading the tokenizer took 6 of
        # its 8 s before the weights, most of it in collections; 1.3 s once frozen.
        gc.freeze()
        gc.enable()
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)  # the forkserver's relay is not for its children
        ignore_terminal_interrupt()

        # setproctitle keeps the memory holding environ for the new title: read once before environ is
        # rewritten (measured: without it SGLang's "sglang::scheduler" titles were lost).
        setproctitle.getproctitle()
        os.environ.clear()
        os.environ.update(self._environment)
        refuse_if_cuda_initialised()
        _log_start(self._target)
        guard_if_scheduler(self._target)
        super().run()


class QuietSpawnProcess(multiprocessing.get_context("spawn").Process):  # type: ignore[misc]
    """SGLang's own spawned child (ENGINE_FORKSERVER off), with SIGINT ignored."""

    def run(self) -> None:
        ignore_terminal_interrupt()
        guard_if_scheduler(self._target)
        super().run()


def guard_if_scheduler(target: Any) -> None:
    """In each engine child that samples (the schedulers, one per tensor-parallel rank, whichever of
    SGLang's entry points starts them): the dead-end-grammar guard (engine/grammar_guard.py), before
    SGLang's code runs. Not in the detokenizer, which would import torch for it when spawned."""
    module, name = getattr(target, "__module__", None) or "", getattr(target, "__name__", "")
    if module.startswith("sglang.") and name != DETOKENIZER_TARGET:
        grammar_guard.install()


def refuse_if_cuda_initialised() -> None:
    torch = sys.modules.get("torch")
    if torch is None:
        return
    bad_fork = getattr(torch.cuda, "_is_in_bad_fork", lambda: False)
    if torch.cuda.is_initialized() or bad_fork():
        raise RuntimeError(
            "CUDA was initialised in the forkserver before this engine process was forked, and CUDA does not "
            "survive a fork. Set ENGINE_FORKSERVER=off"
        )


def _log_start(target: Any) -> None:
    # Logging is the server's, set up in the forkserver (forkserver_preload.py).
    from sglang_hathora.observability import LOGGER_NAME

    logging.getLogger(LOGGER_NAME).info(
        "Engine child %s forked with SGLang preloaded: %s",
        getattr(target, "__name__", target),
        all(name in sys.modules for name in PRELOAD),
    )


class _Multiprocessing:
    """multiprocessing, but for its Process."""

    def __init__(self, process: type) -> None:
        self.Process = process

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)
