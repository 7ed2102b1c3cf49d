#!/usr/bin/env python3
"""Structured pruning's speed at evaluation: PGD-40 through the compact model (`--compact auto`)
against the masked one (`--compact off`), alternating runs on the same CPU, medians; and the
ideal speedup from the compact model's MACs per image (`export --compact --json`). The masked
model runs with `--sparse off` (dense kernels), which `--sparse auto` would replace by sparse ones
for layers pruned below the crossover.

With --layers, one more run of each (`attack --layer-times`) gives the same comparison per step
(a residual block, a conv with its ReLU, ...): where the compact model falls short of its ideal.

Usage: scripts/bench_compact.py CHECKPOINT... [--n 500] [--repeats 3] [--layers] [--data-dir DIR]
       [--bin .build/release/advprune]
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
    parser.add_argument("--layers", action="store_true", help="also compare the two per step (attack --layer-times)")
    parser.add_argument("--data-dir", help="test set directory (default: the data set's)")
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "advprune"))
    a = parser.parse_args()
    data = ["--data-dir", a.data_dir] if a.data_dir else []

    def attack(path, mode, extra=()):
        flags = ["--compact", mode] + (["--sparse", "off"] if mode == "off" else [])
        return run(a.bin, ["attack", path, "--attack", "pgd", "--steps", "40", "--n", str(a.n), "--device", "cpu", *flags, *data, *extra])

    per_step = []
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
                r = attack(path, mode)
                times[mode].append(r["evaluation"]["seconds"])
                robust[mode] = r["evaluation"]["robustAccuracy"]
        masked, compact = statistics.median(times["off"]), statistics.median(times["auto"])
        speedup = masked / compact
        print(
            f"| {os.path.basename(path)} | {ex['macsBefore'] / 1e6:.1f} -> {ex['macsAfter'] / 1e6:.2f} | {ideal:.1f}x | {masked:.2f} | {compact:.2f} "
            f"| {speedup:.1f}x | {100 * speedup / ideal:.0f} % | {100 * robust['off']:.1f} / {100 * robust['auto']:.1f} |")
        sys.stdout.flush()
        if a.layers:
            steps = {mode: attack(path, mode, ["--layer-times"])["layerTimes"] for mode in ("off", "auto")}
            per_step.append((os.path.basename(path), steps["off"], steps["auto"]))
    for name, masked, compact in per_step:
        print(f"\n{name}, per step (PGD-40 on {a.n} points, one run each; ms summed over forward and input-gradient passes):\n")
        print("| step | MMACs/img masked -> compact | ideal | masked ms | compact ms | speedup | share of ideal | compact share of time |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        total = sum(c["forwardSeconds"] + c["backwardSeconds"] for c in compact)
        for m, c in zip(masked, compact):
            ms, cs = (1e3 * (x["forwardSeconds"] + x["backwardSeconds"]) for x in (m, c))
            ideal = m["macsPerImage"] / c["macsPerImage"] if c["macsPerImage"] else None
            speedup = ms / cs if cs > 0 else float("nan")
            print(f"| {c['step']} | {m['macsPerImage'] / 1e6:.3f} -> {c['macsPerImage'] / 1e6:.3f} | "
                  + (f"{ideal:.1f}x" if ideal else "—") + f" | {ms:.1f} | {cs:.1f} | {speedup:.1f}x | "
                  + (f"{100 * speedup / ideal:.0f} %" if ideal else "—") + f" | {100 * cs / 1e3 / total:.1f} % |")


if __name__ == "__main__":
    main()
