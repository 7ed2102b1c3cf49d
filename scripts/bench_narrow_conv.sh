#!/usr/bin/env bash
# Why a compact model's narrow layers do not run faster with the square of their channels (issue
# 11): one thread, per 3x3 shape, the CPU backend's Winograd F(4x4, 3x3) pass (its C kernels:
# input transform, products, output transform) against a direct convolution written to run at the
# FMA peak (benchmarks/narrow_conv/direct.c). Prints a Markdown table: microseconds per pass (best
# of 300), the products' GFLOP/s, the direct kernel's GFLOP/s (direct multiplies) and the share of
# its vector lanes that are outputs, and how much faster the direct pass is.
# Usage: scripts/bench_narrow_conv.sh [IMAGES] (default 2, raised per shape so the products span
# 128 tiles as in the backend; CLANG picks the compiler, default clang on the PATH or Swift's)
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# clang (the kernels use its vector builtins): $CLANG, else on the PATH, else the Swift toolchain's.
cc=${CLANG:-}
if [ -z "$cc" ]; then
  swift=$(command -v swift || true)
  for candidate in clang ${swift:+"$(dirname "$(readlink -f "$swift")")/clang"}; do
    if command -v "$candidate" > /dev/null; then cc=$candidate; break; fi
  done
fi
[ -n "$cc" ] || { echo "bench_narrow_conv: no clang found (set CLANG)" >&2; exit 1; }
k=Sources/CKernels
"$cc" -O3 -I"$k" -I"$k/include" -o "$out/bench" benchmarks/narrow_conv/bench.c benchmarks/narrow_conv/direct.c \
  "$k/winograd4.c" "$k/winograd.c" "$k/small_gemm.c" "$k/isa.c"
echo "| layer (channels in -> out, input plane, images) | Winograd pass us | input / products / output us | products GFLOP/s | direct us | direct GFLOP/s | direct lanes used | direct vs Winograd | max diff |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
# The 3x3 stride-1 layers of the compact models at 75 % filters (ResNet18's stages at 32x32 to
# 4x4; SmallCNN's conv2, conv3, conv4), then dense ones (ResNet18's layer1 and layer2, SmallCNN's
# conv2 and conv4).
for shape in "16 16 32 1" "32 32 16 1" "64 64 8 1" "128 128 4 1" "8 8 26 0" "8 16 12 0" "16 16 10 0" \
             "64 64 32 1" "128 128 16 1" "32 32 26 0" "64 64 10 0"; do
  # shellcheck disable=SC2086
  "$out/bench" "$images" $shape
done
