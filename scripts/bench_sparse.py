#!/usr/bin/env python3
"""Pruned models at evaluation: advprune's sparse/compact path against its dense masked path and
against PyTorch on the same masked model, in one run on this CPU.

For each architecture: a dense model (advprune `train`, one epoch on 64 synthetic images, or a
trained checkpoint given with --dense), pruned one-shot with LWM (local: every layer at the
same rate; no fine-tuning) at 90/95/99 % unstructured and 50/75 % filter sparsity. Each model gets
a synthetic test set labelled with its own predictions, so every point is attacked for every step
and the work is the same on every path. Measured: clean inference (`predict`, its forward time)
and PGD-40 (`attack`, its evaluation time) with `--sparse auto --compact auto` (the default) and
`--sparse off --compact off` (the dense masked kernels), and the same work in PyTorch (masked
weights in dense modules: what PyTorch gives a pruned model); for filter pruning also PyTorch on
the compacted model (`export --compact`: its channels removed), so its own speedup from the same
pruning stands next to ours. Runs alternate; medians (the speedups: of each repeat's paired
masked / fast ratio, with their range from 3 repeats).

What the weights learned matters where pruning empties a filter: the channel is then the constant
ReLU(bias), which compaction folds into its readers where they are unpadded (SmallCNN) and removes.
The synthetic model's conv biases never move from zero (its classifier starts at zero, so one step
sends no gradient back), so its emptied channels are zero and go anyway; a trained model's are
not, and --dense measures those.

Usage: scripts/bench_sparse.py [--arch smallcnn resnet18] [--n 200] [--attack-n 200]
                               [--repeats 3] [--workdir DIR] [--bin .build/release/advprune]
                               [--device cpu|opencl] [--variants dense 90 95 99 'filters 50' ...]
                               [--dense TRAINED.safetensors (with one --arch)]
Needs torch, numpy and safetensors; without them it installs them from PyPI into .venv-bench
and runs there.
"""
import argparse, gzip, json, os, statistics, subprocess, sys, tempfile, time


def ensure_packages():
    """Without torch, numpy or safetensors: install them from PyPI into .venv-bench and re-run there."""
    try:
        import numpy, safetensors, torch  # noqa: F401
        return
    except ImportError as missing:
        reason = missing
    if os.environ.get("ADVPRUNE_BENCH_VENV") == "1":
        sys.exit(f"bench_sparse: {reason} even in .venv-bench; remove it and try again")
    venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".venv-bench")
    python = os.path.join(venv, "bin", "python3")
    if not os.path.exists(python):
        print(f"bench_sparse: {reason}; installing torch, numpy and safetensors into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "torch", "numpy", "safetensors"], check=True)
    os.environ["ADVPRUNE_BENCH_VENV"] = "1"
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


ensure_packages()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_autoattack import build_model  # noqa: E402

VARIANTS = [("dense", None), ("90 %", ("unstructured", 0.9)), ("95 %", ("unstructured", 0.95)),
            ("99 %", ("unstructured", 0.99)), ("filters 50 %", ("filters", 0.5)), ("filters 75 %", ("filters", 0.75))]
SPEC = {"smallcnn": ("fashion-mnist", (1, 28, 28), 0.1), "resnet18": ("cifar10", (3, 32, 32), 8 / 255)}


def advprune(binary, args, device="cpu"):
    out = subprocess.run([binary, *args, "--json", "--quiet", "--device", device], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def write_data(directory, dataset, images, labels, train):
    """`images` uint8 NCHW, in the data set's published file format."""
    os.makedirs(directory, exist_ok=True)
    if dataset == "cifar10":
        records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1)
        for name in ([f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]):
            records.tofile(os.path.join(directory, name))
        return
    split = "train" if train else "t10k"
    n = len(images)
    with gzip.open(os.path.join(directory, f"{split}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (n, 28, 28)) + images.astype(np.uint8).tobytes())
    with gzip.open(os.path.join(directory, f"{split}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.astype(np.uint8).tobytes())


def torch_times(model, x, y, eps, steps, batch):
    """Clean inference over x, and PGD over the points classified correctly, as `attack` does."""
    start = time.perf_counter()
    with torch.no_grad():
        predictions = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    clean = time.perf_counter() - start
    keep = predictions == y
    xs, ys = x[keep], y[keep]
    start = time.perf_counter()
    for i in range(0, len(xs), batch):
        xb, yb = xs[i:i + batch], ys[i:i + batch]
        delta = (torch.rand_like(xb) * 2 - 1) * eps
        for _ in range(steps):
            delta.requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
            delta = (delta.detach() + eps / 4 * g.sign()).clamp(-eps, eps)
    return clean, time.perf_counter() - start


def paired(times, work, slow="masked", fast="fast"):
    """The speedup as the median of each repeat's masked / fast ratio (a repeat runs the masked path,
    then the fast one, so a drift in the host's load between repeats weighs on both), with their
    range from 3 repeats."""
    ratios = sorted(m / f for m, f in zip(times[f"{slow}-{work}"], times[f"{fast}-{work}"]))
    spread = f" ({ratios[0]:.1f}-{ratios[-1]:.1f})" if len(ratios) >= 3 else ""
    return f"{statistics.median(ratios):.1f}x{spread}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["smallcnn", "resnet18"], choices=list(SPEC))
    parser.add_argument("--n", type=int, default=200, help="images for clean inference (one batch)")
    parser.add_argument("--attack-n", type=int, default=200, help="points attacked by PGD-40")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", help="keep the models and data sets here (default: a temporary directory)")
    parser.add_argument("--device", default="cpu", help="advprune's backend for the timed runs (cpu, opencl[:N]); PyTorch runs on the CPU")
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "advprune"))
    parser.add_argument("--variants", nargs="+", metavar="LABEL",
                        help="only these models, by the start of their label: dense 90 95 99 'filters 50' 'filters 75' (default: all)")
    parser.add_argument("--dense", help="prune this trained checkpoint of the (one) --arch instead of the synthetic model")
    a = parser.parse_args()
    if a.dense and len(a.arch) != 1:
        parser.error("--dense names one checkpoint: give exactly one --arch")
    variants = [v for v in VARIANTS if not a.variants or any(v[0].startswith(w) for w in a.variants)]
    if not variants:
        parser.error(f"--variants {' '.join(a.variants)} names none of: {', '.join(label for label, _ in VARIANTS)}")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; advprune {a.bin} on {a.device}")
    print("| model | path | clean: masked s | fast s | speedup | PyTorch s | PGD-40: masked s | fast s | speedup | PyTorch s "
          "| fast / PyTorch (clean, PGD) | PyTorch compact / masked (clean, PGD); its compact PGD-40 s | accuracy masked / fast |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for arch in a.arch:
        dataset, shape, eps = SPEC[arch]
        with tempfile.TemporaryDirectory() as scratch:
            tmp = os.path.join(a.workdir, arch) if a.workdir else scratch
            os.makedirs(tmp, exist_ok=True)
            train_dir = os.path.join(tmp, "train")
            write_data(train_dir, dataset, rng.integers(0, 256, (64, *shape), dtype=np.uint8), rng.integers(0, 10, 64), train=True)
            write_data(train_dir, dataset, rng.integers(0, 256, (8, *shape), dtype=np.uint8), rng.integers(0, 10, 8), train=False)
            dense = a.dense or os.path.join(tmp, "dense.safetensors")
            if not a.dense:
                advprune(a.bin, ["train", "--arch", arch, "--dataset", dataset, "--data-dir", train_dir, "--epochs", "1",
                                 "--train-limit", "64", "--out", dense])
            points = max(a.n, a.attack_n)
            images = rng.integers(0, 256, (points, *shape), dtype=np.uint8)
            for label, pruning in variants:
                path = dense
                if pruning:
                    path = os.path.join(tmp, f"{label.replace(' ', '').replace('%', '')}.safetensors")
                    advprune(a.bin, ["prune", dense, "--method", "lwm", "--locality", "local", "--structure", pruning[0],
                                     "--sparsity", str(pruning[1]), "--finetune-epochs", "0", "--data-dir", train_dir,
                                     "--train-limit", "64", "--out", path])
                # Labels are the model's own predictions: every point is attacked for every step.
                test_dir = os.path.join(tmp, "test-" + os.path.basename(path))
                write_data(test_dir, dataset, images, np.zeros(points), train=False)
                own = advprune(a.bin, ["predict", path, "--data-dir", test_dir, "--n", str(points), "--sparse", "off", "--compact", "off"])
                write_data(test_dir, dataset, images, np.array(own["predictions"]), train=False)
                model, _ = build_model(path, arch)
                compact = None
                if pruning and pruning[0] == "filters":
                    compact_path = os.path.splitext(path)[0] + "-compact.safetensors"
                    advprune(a.bin, ["export", path, "--compact", "--out", compact_path])
                    compact, _ = build_model(compact_path, arch)
                x = torch.from_numpy(images.astype(np.float32) / 255.0)
                y = torch.tensor(own["predictions"])
                times = {k: [] for k in ("masked-clean", "fast-clean", "torch-clean", "masked-pgd", "fast-pgd", "torch-pgd",
                                         "torchc-clean", "torchc-pgd")}
                accuracy, run_path = {}, ""
                for _ in range(a.repeats):
                    for mode, flags in (("masked", ["--sparse", "off", "--compact", "off"]), ("fast", [])):
                        p = advprune(a.bin, ["predict", path, "--data-dir", test_dir, "--n", str(a.n), *flags], a.device)
                        times[f"{mode}-clean"].append(p["seconds"])
                        r = advprune(a.bin, ["attack", path, "--data-dir", test_dir, "--n", str(a.attack_n), "--attack", "pgd",
                                             "--steps", str(a.steps), "--batch-size", "200", *flags], a.device)
                        times[f"{mode}-pgd"].append(r["evaluation"]["seconds"])
                        accuracy[mode] = (r["evaluation"]["cleanAccuracy"], r["evaluation"]["robustAccuracy"])
                        if mode == "fast":
                            run_path = r["path"]
                    for net, key in ((model, "torch"), (compact, "torchc")):
                        if net is None:
                            continue
                        _, pgd = torch_times(net, x[:a.attack_n], y[:a.attack_n], eps, a.steps, 200)
                        times[f"{key}-pgd"].append(pgd)
                        with torch.no_grad():
                            start = time.perf_counter()
                            net(x[:a.n])
                            times[f"{key}-clean"].append(time.perf_counter() - start)
                m = {k: statistics.median(v) for k, v in times.items() if v}
                torch_compact = (f"{paired(times, 'clean', 'torch', 'torchc')}, {paired(times, 'pgd', 'torch', 'torchc')}; "
                                 f"{m['torchc-pgd']:.2f}" if compact is not None else "—")
                acc = " / ".join(f"{100 * c:.1f}, {100 * r:.1f}" for c, r in (accuracy["masked"], accuracy["fast"]))
                print(f"| {arch} {label} | {run_path} | {m['masked-clean']:.3f} | {m['fast-clean']:.3f} "
                      f"| {paired(times, 'clean')} | {m['torch-clean']:.3f} | {m['masked-pgd']:.2f} "
                      f"| {m['fast-pgd']:.2f} | {paired(times, 'pgd')} | {m['torch-pgd']:.2f} "
                      f"| {m['torch-clean'] / m['fast-clean']:.1f}x, {m['torch-pgd'] / m['fast-pgd']:.1f}x | {torch_compact} | {acc} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
