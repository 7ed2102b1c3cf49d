#!/usr/bin/env bash
# PGD-10 adversarial-training throughput of SmallCNN (batch 128) on both backends, in one run.
# Usage: scripts/bench-throughput.sh [extra advprune profile options]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/advprune
[ -x "$bin" ] || swift build -c release
echo "== cpu backend"
"$bin" profile --device cpu --quiet "$@"
echo "== opencl backend"
"$bin" profile --device opencl --quiet --kernels "$@" || echo "(no OpenCL device)"
