"""Where the SGLang engine starts, warms up and stops: ``EngineService``.

Built on the serving event loop's terms (shared/reference/sglang-engine.md):
- the port is bound first: the Engine constructor blocks ~15 s on CPU (minutes for large models on
  GPU), so it runs in a worker thread while uvicorn already answers /health with 503;
- the first async request binds SGLang's receive loop to its event loop, so the warm-up request
  runs on the serving loop, never on a private one;
- SGLang is imported only inside the loading task, after the CPU fixes are applied.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from sglang_hathora.engine import bundled_model, forkserver, object_storage
from sglang_hathora.engine.environment import prepare_for, resolve_device
from sglang_hathora.engine.model_family import Parsers, choose_parsers, read_config
from sglang_hathora.engine.sglang_adapter import SGLangAdapter, startup_parts
from sglang_hathora.engine.startup import StartupPhases
from sglang_hathora.observability import logger
from sglang_hathora.settings import Settings
from sglang_hathora.threads import in_daemon_thread

# Measured on a 2-core CPU with SmolLM2-135M: these engine arguments work; SGLang's CPU default
# attention backend (intel_amx) needs AMX and the real sgl-kernel.
_CPU_ENGINE_ARGS: dict[str, Any] = {
    "device": "cpu",
    "attention_backend": "torch_native",
    "sampling_backend": "pytorch",
    "disable_cuda_graph": True,
    "disable_overlap_schedule": True,
}
# On CPU mem_fraction_static is a share of host RAM, and SGLang checks it against the free RAM measured
# before and after the weights load: anything else on the host that takes more than that share meanwhile
# failed the load ("Loaded weights leave no GPU memory for the KV cache under 0.05": an image build beside
# the tests took 1.3 GB). max_total_tokens caps the pool itself, so 0.25 only widens that tolerance.
_CPU_DEFAULTS: dict[str, Any] = {"mem_fraction_static": 0.25, "max_total_tokens": 4096, "context_length": 4096}


def deterministic_args(device: str) -> dict[str, Any]:
    """DETERMINISTIC_INFERENCE. Why a greedy answer can change (measured, bench/greedy_burst.py): a prefix
    that a burst computed inside a batched prefill lands in the prefix cache with KV that differs in its
    last bf16 bits from the same prefix computed alone, and a later request served from it sees logits a
    step or two off. The bundled model's first token for "What is the capital of France?" has a margin
    of 0.125 nats ("The" -1.817, "L" -1.942) on a fresh server; after 400 requests at once it was an exact
    tie (-1.946 each) and the answer began "L'Etoile". SGLang's deterministic mode makes its kernels
    batch-invariant on the attention backends that have such kernels; the CPU's torch_native has none
    (SGLang refuses the flag with it), so there the prefix cache is turned off instead: an answer no
    longer depends on what ran before it, though requests sharing a batch can still differ in the last bits."""
    if device == "cpu":
        return {"disable_radix_cache": True}
    return {"enable_deterministic_inference": True}


def engine_args(settings: Settings, model_path: str, device: str, parsers: Parsers | None = None) -> dict[str, Any]:
    """The keyword arguments for ``sglang.Engine``: a pure function of the settings (and the parsers
    chosen for the model, engine/model_family.py)."""
    args: dict[str, Any] = {
        "model_path": model_path,
        "served_model_name": settings.model_name,
        "tp_size": settings.tp_size,
        "sleep_on_idle": settings.sleep_on_idle,
        "log_level": settings.log_level.lower() if settings.log_level != "DEBUG" else "info",
        # Our own warm-up runs on the serving loop; SGLang's would need its HTTP server.
        "skip_server_warmup": True,
        "enable_metrics": settings.enable_engine_metrics,
        # usage.prompt_tokens_details.cached_tokens in every response and final usage chunk (0 when
        # the prefix cache served nothing): what OpenAI's clients read to see the cache working.
        "enable_cache_report": True,
        # /v1/responses keeps responses for retrieve and previous_response_id; SGLang's store has no
        # bound, so the serving layer replaces it with one (openai/response_store.py).
        "enable_response_store": True,
    }
    if device == "cpu":
        args.update(_CPU_ENGINE_ARGS)
        args.update(_CPU_DEFAULTS)
    if settings.deterministic_inference:
        args.update(deterministic_args(device))
    args.update(object_storage.engine_args(model_path))
    optional = {
        "tool_call_parser": parsers.tool_call_parser if parsers else None,
        "reasoning_parser": parsers.reasoning_parser if parsers else None,
        "chat_template": settings.chat_template,
        "max_total_tokens": settings.max_total_tokens,
        "context_length": settings.context_length,
        "mem_fraction_static": settings.mem_fraction_static,
        "random_seed": settings.random_seed,
    }
    args.update({key: value for key, value in optional.items() if value is not None})
    return args


class EngineService:
    """Owns the SGLang engine: builds and warms it, gives the adapter to the rest, shuts it down. The
    server's state (loading, ready, failed...) is the lifecycle's (lifecycle/state.py), not kept here."""

    def __init__(self, settings: Settings, startup: StartupPhases | None = None) -> None:
        self.settings = settings
        self.startup = startup or StartupPhases()
        self.loaded = False  # built and warmed: the adapter serves
        self.adapter: SGLangAdapter | None = None
        self.model_path: str = settings.model_path or str(bundled_model.checkpoint_dir(settings.model_cache_dir))
        self.device: str | None = None
        self.engine: Any = None
        self.failure: str | None = None
        self.load_cancelled: str | None = None  # why a stop ended the load, if one did
        # Set at shutdown: the thread that built the engine may end. SGLang's children set
        # PR_SET_PDEATHSIG, which Linux sends when the THREAD that started them ends (measured: the
        # scheduler was SIGKILLed a second after its build thread returned).
        self._release_threads = threading.Event()
        self._shut_down = False

    async def start(self, take_signals: Callable[[], None] | None = None) -> None:
        """Load and warm up. Raises on failure (the reason in .failure). ``take_signals`` puts the
        server's signal handlers back at once after SGLang put its own (see ``_warm_up``)."""
        phases = self.startup
        try:
            phases.advance("device")
            self.device = await in_daemon_thread(resolve_device, self.settings.device)
            prepare_for(self.device)  # before the first sglang import, inherited by its children
            preloaded = forkserver.enabled(self.settings.engine_forkserver, self.device)
            phases.advance("forkserver")
            if preloaded:  # it imports SGLang on the other core while this process goes on
                forkserver.start()  # on the main thread (see its docstring); a no-op if serve_hathora.py did
            phases.advance("model_files")
            if self.settings.model_path is None:
                self.model_path = str(await in_daemon_thread(bundled_model.prepare, self.settings.model_cache_dir))
            phases.advance("sglang_import")
            await in_daemon_thread(_import_sglang)
            forkserver.install(preloaded)
            phases.advance("engine_build")  # from the model's config on: a bucket's is pulled first
            local = self.model_path
            if object_storage.is_object_storage(self.model_path):
                object_storage.provide_credentials(self.settings.gcp_service_account_key_base64)
                local = await in_daemon_thread(object_storage.metadata_dir, self.model_path)
            config = await in_daemon_thread(read_config, local)
            settings = self.settings
            parsers = choose_parsers(settings.tool_call_parser, settings.reasoning_parser, config, self.model_path)
            logger.info(
                "Parsers: tool calls %s, reasoning %s (%s)",
                parsers.tool_call_parser or "off",
                parsers.reasoning_parser or "off",
                parsers.why,
            )
            args = engine_args(self.settings, self.model_path, self.device, parsers)
            if settings.deterministic_inference and self.device == "cpu":
                logger.warning(
                    "DETERMINISTIC_INFERENCE: SGLang has no batch-invariant kernels on the CPU, so the prefix "
                    "cache is off instead: an answer does not depend on earlier traffic, but requests that run "
                    "in one batch can still differ"
                )
            logger.info("Loading model %s on %s (tp_size=%d)", self.model_path, self.device, self.settings.tp_size)
            self.engine = await in_daemon_thread(_build_engine, args, park_until=self._release_threads)
            phases.engine_parts(startup_parts(self.engine))
            self.adapter = SGLangAdapter(self.engine)
            phases.advance("warm_up")
            await self._warm_up(take_signals)
        except BaseException as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            raise
        self.loaded = True
        phases.ready()

    def cancel_load(self, reason: str) -> None:
        """A stop during the load: end the engine's children now (SGLang's load waits on them and fails
        within its 5 s poll); what still runs in this process is left to end with it."""
        if self.loaded or self._shut_down:
            return
        self.load_cancelled = reason
        if ended := end_children():
            logger.info("Load cancelled (%s): ended engine process(es) %s", reason, ended)

    async def _warm_up(self, take_signals: Callable[[], None] | None) -> None:
        # SGLang's receive loop bound to the serving loop, and in the same step (no await between: a
        # signal is dispatched by the loop, to whichever handler is set then) the server's handlers put
        # back over SGLang's. Before, the warm-up's first request installed SGLang's, ours came back only
        # after it: a scheduler death in that window SIGKILLed this process (exit -9, CI run of 00a5188).
        self.adapter.bind_receive_loop()
        if take_signals is not None:
            take_signals()
        # One real generation on the serving loop: compiles what is lazily compiled.
        output = await self.engine.async_generate("Hello", {"max_new_tokens": 2, "temperature": 0.0})
        logger.info("Warm-up generation done (%s tokens)", output["meta_info"]["completion_tokens"])

    def shutdown(self) -> None:
        """Stop the engine and its child processes. Safe to call in any state, more than once."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.engine is not None:
            started = time.monotonic()
            self.engine.shutdown()
            logger.info("Engine shut down in %.2f s", time.monotonic() - started)
        self._release_threads.set()


def _import_sglang() -> None:
    # The cyclic collector is off for the import: it builds ~750k objects and almost no garbage, and the
    # collections walking the growing heap took a fifth of its time (6.6 s with, 5.2 s without, measured).
    # What it built is then frozen (kept for the process's life, never walked again: the tokenizer's load
    # during the engine build triggers several full collections, and serving would too).
    gc.disable()
    try:
        import sglang.srt.entrypoints.engine  # noqa: F401 - timed as its own phase
    finally:
        gc.freeze()
        gc.enable()


def _build_engine(args: dict[str, Any]) -> Any:
    from sglang.srt.entrypoints.engine import Engine

    return Engine(**args)


def adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux PR_SET_CHILD_SUBREAPER). SGLang's
    scheduler and detokenizer are children of the forkserver: when the engine's shutdown ends the
    forkserver first, they were reparented to PID 1 and stayed zombies in the terminal's process group
    after the server exited (seen: both still listed 0.5 s later). Adopted, end_children reaps them."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_child_subreaper = 36
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1)


def end_children() -> str:
    """SIGKILL every descendant of this process (stopped ones too) and reap them; what was ended."""
    children = psutil.Process().children(recursive=True)
    alive = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:  # zombies are only reaped below
                alive.append(f"{child.pid} ({child.name()})")
                child.kill()
    psutil.wait_procs(children, timeout=10)
    return ", ".join(alive)
