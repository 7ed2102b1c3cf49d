#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (safetensors, IDX, MATLAB v5, CIFAR-10 binary, the bench
# config) with libFuzzer and AddressSanitizer: a seed corpus of valid files (scripts/fuzz_seeds.py)
# plus the committed regressions (fuzz/regressions/<parser>/), RUNS inputs per parser, a 1 GiB
# memory limit (an allocation of a declared, absurd size is a finding too). Prints inputs tried
# and crashes per parser; exit 1 on any crash, whose input is left in OUT/crashes/<parser>/ —
# add it to fuzz/regressions/<parser>/ with the fix.
# Usage: scripts/fuzz.sh [RUNS per parser, default 100000] [OUT dir]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100000}"
out="${2:-$(mktemp -d)}"
mkdir -p "$out"
parsers=(Safetensors IDX IDXFile MAT CIFAR10 BenchConfig)
flags=(-c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
# SwiftPM links an executable with its entry renamed (`main=<target>_main`), which a libFuzzer
# target does not have: the targets are compiled by SwiftPM and linked here with libFuzzer's main.
build="fuzz/.build/$(uname -m)-unknown-linux-gnu/release"
for p in "${parsers[@]}"; do
  if ! swift build --package-path fuzz "${flags[@]}" --target "Fuzz$p" >> "$out/build.log" 2>&1; then
    echo "fuzz build failed (see $out/build.log)" >&2; grep -m5 "error:" "$out/build.log" >&2; exit 2
  fi
done
for p in "${parsers[@]}"; do
  find "$build" -name '*.o' ! -path '*/Fuzz*.build/*' > "$out/objects-$p"
  find "$build/Fuzz$p.build" -name '*.o' >> "$out/objects-$p"
  swiftc -lstdc++ -L "$build" -o "$build/Fuzz$p" -module-name "Fuzz$p" -emit-executable -Xlinker --gc-sections \
    "@$out/objects-$p" -sanitize=fuzzer,address -parse-as-library 2>> "$out/build.log"
done
python3 scripts/fuzz_seeds.py "$out/seeds"
failed=0
printf '%-12s %10s %8s %8s\n' parser inputs crashes corpus
for p in "${parsers[@]}"; do
  corpus="$out/corpus/$p"
  mkdir -p "$corpus" "$out/crashes/$p"
  cp "$out/seeds/$p/"* "$corpus/"
  if [ -d "fuzz/regressions/$p" ]; then cp "fuzz/regressions/$p/"* "$corpus/" 2>/dev/null || true; fi
  # TOMLKit 0.6.0's tables have no deinit (each parse leaks its C++ table, a few KB, upstream):
  # leak detection is off for the config target only; every other finding still counts.
  leaks=1
  [ "$p" = BenchConfig ] && leaks=0
  set +e
  ASAN_OPTIONS="detect_leaks=$leaks" "$build/Fuzz$p" -runs="$runs" -max_len=16384 -timeout=20 -rss_limit_mb=1024 -detect_leaks=$leaks -print_final_stats=1 \
    -artifact_prefix="$out/crashes/$p/" "$corpus" > "$out/$p.log" 2>&1
  status=$?
  set -e
  tried=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$p.log" | grep -o '[0-9]*$' | head -1 || echo "?")
  crashes=$(find "$out/crashes/$p" -type f | wc -l)
  printf '%-12s %10s %8s %8s\n' "$p" "$tried" "$crashes" "$(ls "$corpus" | wc -l)"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    grep -m5 -E "ERROR|SUMMARY|Fatal error" "$out/$p.log" >&2 || true
  fi
done
exit $failed
