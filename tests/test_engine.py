"""Engine arguments, the warm-up's signal handover, and a model that fails to load ending the process
clearly."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal

import pytest

from sglang_hathora.engine import cpu_compat
from sglang_hathora.engine.model_family import Parsers
from sglang_hathora.engine.service import EngineService, engine_args
from sglang_hathora.settings import Settings
from tests.server_process import ServerProcess


def test_every_engine_argument_is_one_sglang_knows() -> None:
    """sglang.Engine(**args) raises on an unknown name only at start, after the port is bound and SGLang
    imported: an upgrade that renames an argument shows here instead, for the CPU and the GPU sets."""
    cpu_compat.install_torchvision_fix()  # in this process only: SGLang's import pulls torchvision
    from sglang.srt.server_args import ServerArgs

    known = set(inspect.signature(ServerArgs).parameters)  # a msgspec Struct: its fields are its parameters
    assert {"model_path", "device", "sleep_on_idle"} <= known
    full = Settings(tp_size=2, max_total_tokens=4096, context_length=4096, mem_fraction_static=0.1, random_seed=1)
    full = full.model_copy(update={"deterministic_inference": True})
    parsers = Parsers(tool_call_parser="qwen", reasoning_parser="qwen3", why="test")
    for device in ("cpu", "cuda"):
        assert set(engine_args(full, "/models/x", device, parsers)) - known == set()


def test_cpu_arguments_fit_one_full_context_and_sleep_when_idle() -> None:
    args = engine_args(Settings(sleep_on_idle=True), "/models/x", "cpu")
    assert args["device"] == "cpu" and args["disable_cuda_graph"]  # nothing CUDA-only on a CPU
    assert args["sleep_on_idle"] is True  # an idle scheduler otherwise burns a whole core
    # One request as long as the context must fit in the token pool, or SGLang refuses it at admission.
    assert args["context_length"] <= args["max_total_tokens"]
    assert args["served_model_name"] == "SmolLM2-135M-Instruct"


def test_deterministic_inference_is_sglangs_mode_on_gpu_and_no_prefix_cache_on_cpu() -> None:
    on = Settings(deterministic_inference=True)
    assert engine_args(on, "org/model", "cuda")["enable_deterministic_inference"] is True
    cpu = engine_args(on, "/m", "cpu")
    # SGLang refuses its deterministic mode with the CPU's attention backend (torch_native).
    assert "enable_deterministic_inference" not in cpu and cpu["disable_radix_cache"] is True
    off = engine_args(Settings(), "/m", "cpu")
    assert "disable_radix_cache" not in off and "enable_deterministic_inference" not in off


def test_gpu_arguments_leave_sizing_to_sglang_unless_set() -> None:
    args = engine_args(Settings(model_path="org/model", tp_size=4), "org/model", "cuda")
    assert "device" not in args and "attention_backend" not in args
    assert "max_total_tokens" not in args and "context_length" not in args
    assert args["tp_size"] == 4 and args["served_model_name"] == "org/model"
    sized = engine_args(Settings(max_total_tokens=65536, context_length=8192), "org/model", "cuda")
    assert sized["max_total_tokens"] == 65536 and sized["context_length"] == 8192


def test_settings_override_cpu_defaults() -> None:
    args = engine_args(Settings(max_total_tokens=2048, mem_fraction_static=0.1), "/m", "cpu")
    assert args["max_total_tokens"] == 2048 and args["mem_fraction_static"] == 0.1


@pytest.mark.engine  # a real process importing SGLang / a real conversion
@pytest.mark.timeout(300)
def test_a_signal_during_the_warm_up_reaches_the_servers_handler_not_sglangs() -> None:
    """SGLang puts its SIGQUIT handler (SIGKILL of the whole tree, this process included) on the loop
    when its receive loop is bound; a child that dies while the warm-up waits sends SIGQUIT. The server's
    handler must be the one that runs (in a real start, the engine's children are ended with our line)."""
    seen: list[str] = []

    async def warm_up() -> None:
        loop = asyncio.get_running_loop()

        class Adapter:  # as SGLang's auto_create_handle_loop does on the main thread
            def bind_receive_loop(self) -> None:
                loop.add_signal_handler(signal.SIGQUIT, seen.append, "sglang's")

        class Engine:
            async def async_generate(self, prompt: str, params: dict) -> dict:
                os.kill(os.getpid(), signal.SIGQUIT)  # the scheduler died after it said ready
                await asyncio.sleep(0.2)
                return {"meta_info": {"completion_tokens": 2}}

        service = EngineService(Settings())
        service.adapter, service.engine = Adapter(), Engine()
        try:
            await service._warm_up(lambda: loop.add_signal_handler(signal.SIGQUIT, seen.append, "ours"))
        finally:
            loop.remove_signal_handler(signal.SIGQUIT)

    asyncio.run(warm_up())
    assert seen == ["ours"]


def test_model_that_fails_to_load_ends_the_process(tmp_path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    server = ServerProcess(log_file=tmp_path / "serve.log", extra_env={"MODEL_PATH": str(broken)}).start()
    try:
        assert server.wait(timeout=240) == 1
    finally:
        server.stop()
    log = server.log_file.read_text()
    assert "ERROR - Engine failed to load, exiting: " in log
    assert "Exited with status 1" in log
