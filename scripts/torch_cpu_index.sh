# Sourced by install.sh and docker_wheelhouse.sh: where the CPU build of torch comes from.
# PyPI's torch==2.13.0 for Linux is the CUDA build (several GB with its NVIDIA wheels); PyTorch's own
# CPU index has the CPU build. It is asked only if it answers within 5 s: behind a registry-only proxy
# it does not resolve at all (measured: 0.04 s to know), and pip's own retries would take minutes.
# Needs VENV (a venv whose python runs the probe).
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

# The pip arguments that select torch's source: the CPU index when it answers, else pip's configured
# sources (a local CPU wheel here, PyPI's CUDA build elsewhere), said in one line on stderr.
torch_source_args() {
  if torch_index_reachable; then
    echo "==> torch: CPU build from $TORCH_CPU_INDEX" >&2
    echo "--index-url $TORCH_CPU_INDEX"
  else
    echo "==> torch: $TORCH_CPU_INDEX unreachable; pip's configured sources (a local CPU wheel, or PyPI's CUDA build)" >&2
  fi
}
