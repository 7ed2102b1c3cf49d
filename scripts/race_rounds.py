#!/usr/bin/env python3
"""PGD-10 adversarial-training throughput of advprune's CPU backend, its OpenCL backend and
PyTorch on this CPU, in interleaved rounds: each round runs the three one after another, so
where a shared host's load drifts between stretches (one stretch read SmallCNN on OpenCL at 150
img/s, the next at 270) it weighs on the three of a round alike. Prints each round's images/s and
ratios, then the medians of the per-round ratios — the numbers to compare with a bar.

Usage: scripts/race_rounds.py [--rounds 5] [--arch smallcnn|resnet18] [--batches 3] [--warmup 1]
                              [--batch-size 128] [--bin .build/release/advprune]
PyTorch's side needs torch in python3 (scripts/bench_pytorch.py); without it that column is left
empty. An OpenCL run that fails (no device) leaves its column empty too.
"""
import argparse, json, os, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def images_per_second(command):
    """The imagesPerSecond of the one JSON object a run prints, or None when it fails."""
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"race_rounds: {' '.join(command[:4])} ... failed ({run.returncode}): {run.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    start = run.stdout.find("{")
    return json.loads(run.stdout[start:])["imagesPerSecond"] if start >= 0 else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--arch", default="smallcnn", choices=["smallcnn", "resnet18"])
    parser.add_argument("--batches", type=int, default=3, help="measured batches per run (their median)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release", "advprune"))
    a = parser.parse_args()
    sizes = ["--arch", a.arch, "--batches", str(a.batches), "--warmup", str(a.warmup), "--batch-size", str(a.batch_size)]
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
        print("race_rounds: python3 has no torch; the PyTorch column stays empty", file=sys.stderr)

    def fmt(v, unit=""):
        return "-" if v is None else f"{v:.1f}{unit}" if unit != "x" else f"{v:.2f}x"

    print(f"PGD-10 AT, {a.arch}, batch {a.batch_size}, median of {a.batches} batches per run, {a.rounds} interleaved rounds")
    print("| round | CPU img/s | OpenCL img/s | PyTorch img/s | OpenCL / CPU | CPU / PyTorch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    ratios = {"opencl": [], "pytorch": []}
    for r in range(1, a.rounds + 1):
        cpu = images_per_second([a.bin, "profile", "--device", "cpu", *sizes, "--quiet", "--json"])
        cl = images_per_second([a.bin, "profile", "--device", "opencl", *sizes, "--quiet", "--json"])
        pt = images_per_second([sys.executable, os.path.join(HERE, "bench_pytorch.py"), *sizes]) if has_torch else None
        opencl_ratio = cl / cpu if cl and cpu else None
        pytorch_ratio = cpu / pt if cpu and pt else None
        if opencl_ratio:
            ratios["opencl"].append(opencl_ratio)
        if pytorch_ratio:
            ratios["pytorch"].append(pytorch_ratio)
        print(f"| {r} | {fmt(cpu)} | {fmt(cl)} | {fmt(pt)} | {fmt(opencl_ratio, 'x')} | {fmt(pytorch_ratio, 'x')} |", flush=True)
    med = {k: statistics.median(v) if v else None for k, v in ratios.items()}
    spread = {k: f" ({min(v):.2f}-{max(v):.2f})" if v else "" for k, v in ratios.items()}
    print(f"| median of the rounds' ratios | | | | {fmt(med['opencl'], 'x')}{spread['opencl']} | {fmt(med['pytorch'], 'x')}{spread['pytorch']} |")
    if not ratios["opencl"] and not ratios["pytorch"]:
        sys.exit("race_rounds: no round produced a ratio")


if __name__ == "__main__":
    main()
