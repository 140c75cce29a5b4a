"""Where Dockerfile.hathora puts the model's weights into the image: at build time, never at start.

    python3 bake_model.py MODEL_ID TARGET [REVISION]

MODEL_ID is a Hugging Face model id (``meta-llama/Meta-Llama-3.1-8B-Instruct``), downloaded with
huggingface_hub (the SGLang image has it), or a checkpoint folder put in the build context's
``docker/models/``, written ``./docker/models/NAME`` (``make docker-hathora-standin`` bakes the
bundled model that way, with no hub in reach; only that folder is mounted, not the whole context).
A gated model's token is read from the BuildKit secret ``hf_token`` (``/run/secrets/hf_token``): a
secret mount is in no layer and in no line of the image's history, unlike a build argument or ENV.

Only what SGLang loads is fetched: where a repository has safetensors, its ``*.bin``/``*.pth``
copies and ``original/`` (Llama 3.1 8B's holds a second 16 GB of the same weights) are left out.
Runs with the image's own Python and nothing but the standard library and huggingface_hub.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

CONTEXT = Path("/context")  # where the RUN that calls this script mounts docker/models/ of the build context
LOCAL = "./docker/models/"
SECRET = Path("/run/secrets/hf_token")
DUPLICATES = ["*.bin", "*.pth", "*.pt", "*.gguf", "*.msgpack", "*.h5", "original/*", "consolidated*"]


def token() -> str | None:
    try:
        return SECRET.read_text().strip() or None
    except OSError:
        return None


def from_context(path: str, target: Path) -> str:
    source = (CONTEXT / path).resolve()
    if not path.startswith(LOCAL) or not (source / "config.json").is_file():
        raise SystemExit(f"bake_model: {path} is not a checkpoint folder (with config.json) under {LOCAL}")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".complete", ".cache"))
    return f"copied from the build context's {path}"


def from_hub(model_id: str, revision: str, target: Path) -> str:
    from huggingface_hub import HfApi, snapshot_download

    secret = token()
    files = HfApi().list_repo_files(model_id, revision=revision, token=secret)
    ignore = DUPLICATES if any(name.endswith(".safetensors") for name in files) else ["original/*"]
    snapshot_download(model_id, revision=revision, local_dir=target, token=secret, ignore_patterns=ignore)
    shutil.rmtree(target / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping
    return f"downloaded {model_id}@{revision} ({'with' if secret else 'without'} a token)"


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or not argv[1]:
        raise SystemExit("usage: bake_model.py MODEL_ID TARGET [REVISION]")
    model_id, target, revision = argv[1], Path(argv[2]), argv[3] if len(argv) == 4 else "main"
    started = time.monotonic()
    if target.exists():
        shutil.rmtree(target)
    how = from_context(model_id, target) if model_id.startswith("./") else from_hub(model_id, revision, target)
    for path in [target, *target.rglob("*")]:  # readable by the server's uid (safetensors files are 0600)
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    line = f"{model_id} -> {target}: {how}, {size / 1e6:.0f} MB in {time.monotonic() - started:.0f} s"
    # What was baked, and whether a token was given: never the token itself (the tests look for it).
    (target / ".baked").write_text(f"{line}; token given: {'yes' if token() else 'no'}\n")
    print(f"bake_model: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
