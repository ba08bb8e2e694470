#!/usr/bin/env bash
# Device check: on a machine with a GPU (jax, flax, optax, diffrax, scipy, absl, matplotlib preinstalled; no network),
# install the few missing pure-Python dependencies from wheels carried in .whl/, then run -- within 8 minutes on an
# H200 -- the tests that make sense on a GPU, the benchmark, compile time and kernels per SGD step (compiled HLO), and
# the paper's two-layer sweep (768 runs x 1e5 steps, float64) timed end to end. Writes device_check.json under the
# output folder and prints a short table last.
#
#   experiments/device_check.sh [OUT_DIR]        # default: $OUT, else /tmp/specjax_device_check
#   SPECJAX_DEVICE_CHECK_SCALE=tiny experiments/device_check.sh DIR   # seconds-long version (the CPU test runs it)
#
# Fill .whl/ beforehand on a machine with network access (it is git-ignored and travels with the working tree):
#   pip download --no-deps -d .whl ml_collections
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-/tmp/specjax_device_check}}"
mkdir -p "$OUT_DIR"
for module in ml_collections; do
  if ! python -c "import $module" 2>/dev/null; then
    pip install --quiet --no-index --find-links .whl "$module" || echo "device_check: cannot install $module from .whl/" >&2
  fi
done
python -c "import submitit" 2>/dev/null || pip install --quiet --no-index --find-links .whl submitit 2>/dev/null || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python experiments/device_check.py --out "$OUT_DIR"
