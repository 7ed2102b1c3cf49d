#!/usr/bin/env bash
# Why a compact model's narrow layers do not run faster with the square of their channels (issue
# 11): one thread, per 3x3 shape, the CPU backend's Winograd F(4x4, 3x3) pass (its C kernels:
# input transform, products, output transform) against a direct convolution written to run at the
# FMA peak (benchmarks/narrow_conv/direct.c). Prints a Markdown table: microseconds per pass (best
# of 300), the products' GFLOP/s, the direct kernel's GFLOP/s (direct multiplies), and how much
# faster the direct pass is.
# Usage: scripts/bench_narrow_conv.sh [IMAGES] (default 2; CC picks the C compiler, a clang)
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# clang (the kernels use its vector builtins): $CC, else on the PATH, else the Swift toolchain's.
cc=${CC:-}
if [ -z "$cc" ]; then
  for candidate in clang "$(dirname "$(command -v swift || echo /usr/bin/swift)")/clang"; do
    if command -v "$candidate" > /dev/null; then cc=$candidate; break; fi
  done
fi
[ -n "$cc" ] || { echo "bench_narrow_conv: no clang found (set CC)" >&2; exit 1; }
k=Sources/CKernels
"$cc" -O3 -I"$k" -I"$k/include" -o "$out/bench" benchmarks/narrow_conv/bench.c benchmarks/narrow_conv/direct.c \
  "$k/winograd4.c" "$k/winograd.c" "$k/small_gemm.c" "$k/isa.c"
echo "| layer (channels in -> out, plane, images) | Winograd pass us | input / products / output us | products GFLOP/s | direct us | direct GFLOP/s | direct vs Winograd | max diff |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
# Compact models at 75 % filters (ResNet18 16-128 channels, SmallCNN 8 and 16), then the dense ones.
for shape in "16 16 32 1" "32 32 16 1" "64 64 8 1" "8 8 26 0" "16 16 12 0" "16 16 10 0" \
             "64 64 32 1" "128 128 16 1" "32 32 26 0" "64 64 10 0"; do
  # shellcheck disable=SC2086
  "$out/bench" "$images" $shape
done
