#!/usr/bin/env python3
"""Structured pruning's speed at evaluation: PGD-40 through the compact model (`--compact auto`)
against the masked one (`--compact off`), alternating runs on the same CPU, medians; and the
ideal speedup from the compact model's MACs per image (`export --compact --json`).

Usage: scripts/bench_compact.py CHECKPOINT... [--n 500] [--repeats 3] [--bin .build/release/advprune]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile


def run(binary, args):
    out = subprocess.run([binary, *args, "--json", "--quiet"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "advprune"))
    a = parser.parse_args()
    print("| checkpoint | MMACs/img dense -> compact | ideal | masked s | compact s | speedup | share of ideal | robust masked / compact |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for path in a.checkpoints:
        with tempfile.TemporaryDirectory() as tmp:
            ex = run(a.bin, ["export", path, "--compact", "--out", os.path.join(tmp, "c.safetensors")])
        ideal = ex["macsBefore"] / ex["macsAfter"]
        times = {"off": [], "auto": []}
        robust = {}
        for _ in range(a.repeats):
            for mode in ("off", "auto"):
                r = run(a.bin, ["attack", path, "--attack", "pgd", "--steps", "40", "--n", str(a.n), "--device", "cpu", "--compact", mode])
                times[mode].append(r["evaluation"]["seconds"])
                robust[mode] = r["evaluation"]["robustAccuracy"]
        masked, compact = statistics.median(times["off"]), statistics.median(times["auto"])
        speedup = masked / compact
        print(
            f"| {os.path.basename(path)} | {ex['macsBefore'] / 1e6:.1f} -> {ex['macsAfter'] / 1e6:.2f} | {ideal:.1f}x | {masked:.2f} | {compact:.2f} "
            f"| {speedup:.1f}x | {100 * speedup / ideal:.0f} % | {100 * robust['off']:.1f} / {100 * robust['auto']:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
