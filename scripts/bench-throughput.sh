#!/usr/bin/env bash
# PGD-10 adversarial-training throughput (batch 128) on both backends and, when python3 has torch,
# of the same step in PyTorch on this CPU — all in one run, so the numbers are comparable.
# Usage: scripts/bench-throughput.sh [--arch smallcnn|resnet18] [--batches N] [--warmup N]
# KERNELS=1 adds OpenCL's per-kernel table (a separate run: its events serialise the queue).
# ROUNDS=N runs scripts/race_rounds.py instead: N interleaved rounds of the three and the medians
# of their per-round ratios, for a host whose load drifts.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/advprune
[ -x "$bin" ] || swift build -c release
if [ "${ROUNDS:-0}" -gt 0 ]; then exec python3 scripts/race_rounds.py --rounds "$ROUNDS" "$@"; fi
echo "== advprune, cpu backend"
"$bin" profile --device cpu --quiet "$@"
echo "== advprune, opencl backend"
"$bin" profile --device opencl --quiet "$@" || echo "(no OpenCL device)"
if [ "${KERNELS:-0}" = 1 ]; then "$bin" profile --device opencl --quiet --kernels "$@" || true; fi
echo "== pytorch peer, same CPU"
if python3 -c "import torch" 2>/dev/null; then
  python3 scripts/bench_pytorch.py "$@"
else
  echo "(python3 has no torch: pip install torch)"
fi
