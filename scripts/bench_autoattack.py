"""advprune's AutoAttack against a PyTorch peer (torchattacks) on one CPU: same weights, same points.

Runs, one after the other on this machine:
  (a) `advprune attack CHECKPOINT --attack autoattack --version standard --device cpu --json
      --per-point FILE` as a subprocess (its own timings plus the wall time measured here), and
  (b) AutoAttack "standard" built from torchattacks 3.5.1's attack classes, chained as AutoAttack
      does: misclassified clean points are not attacked, each attack runs only on the points
      still robust after the previous ones (regrouped into batches of --batch-size), and a point
      is robust only if every attack fails. After every attack the adversarial points are checked
      here: a success counts only if the point is misclassified, within eps in L-inf (1e-6 slack),
      finite, and in [0, 1].
and prints per attack the robust accuracy after it and its time for both engines, then clean
accuracy, final robust accuracy, total times, the speed ratio peer/advprune, the difference in
robust accuracy in points, and how many points are robust for one engine only.

The peer's attacks are AutoAttack's standard parameters (Croce & Hein 2020; fra31/auto-attack):
  APGD-CE  torchattacks.APGD(norm="Linf", eps, steps=100, n_restarts=1, loss="ce", rho=0.75, eot_iter=1, seed=0)
  APGD-T   torchattacks.APGDT(norm="Linf", eps, steps=100, n_restarts=1, n_classes=10, rho=0.75, eot_iter=1, seed=0)
           (n_classes is the number of classes; torchattacks targets n_classes - 1 = 9 classes,
           the 2nd..10th highest logits, as AutoAttack's n_target_classes=9)
  FAB-T    torchattacks.FAB(norm="Linf", eps, steps=100, n_restarts=1, multi_targeted=True, n_classes=10,
           alpha_max=0.1, eta=1.05, beta=0.9, seed=0)   (9 target classes, as above)
  Square   torchattacks.Square(norm="Linf", eps, n_queries=5000, n_restarts=1, p_init=0.8, loss="margin",
           resc_schedule=True, seed=0)
torchattacks' own `AutoAttack(version="standard")` is NOT used: in 3.5.1 it leaves APGD, APGD-T
and FAB at their class default of steps=10 (AutoAttack uses 100), defaults eps to 8/255 and its
seed to time.time(), and its MultiAttack chain does not check the eps ball. The output lists both
what is used here and what torchattacks.AutoAttack would use, read from the installed package.

Checkpoint: advprune's safetensors (PyTorch state_dict names; `*_mask` and `*_momentum` keys
are dropped after multiplying each weight by its mask, a no-op for advprune's files whose weights
are already masked). Architectures: smallcnn (Fashion-MNIST/MNIST IDX files) and resnet18
(CIFAR-10 `test_batch.bin`), from the checkpoint's `arch` metadata or --arch.

Threads: advprune's CPU backend uses every core; the peer uses --threads (default 2, the cores of
the machine this was written on): set it to the core count for a fair ratio elsewhere. Timings
are only meaningful on an otherwise idle machine.

Requirements: torch, numpy, and
    pip install --no-deps torchattacks==3.5.1 safetensors
(`--no-deps`: torchattacks' declared dependencies pull a CUDA build of torch and torchvision
over a CPU torch; at run time it needs only torch, numpy and scipy.)

Usage:
    python3 scripts/bench_autoattack.py CHECKPOINT [--eps 0.1] [--n 1000] [--batch-size 500]
        [--threads 2] [--advprune .build/release/advprune] [--data-dir DIR] [--json OUT.json]
    python3 scripts/bench_autoattack.py CHECKPOINT --peer-only --n 50     # PyTorch half only
"""
import argparse, gzip, json, os, platform, re, subprocess, sys, tempfile, time

import numpy as np

try:
    import torch
except ImportError:
    sys.exit("bench_autoattack: torch is missing (pip install torch, or the CPU wheel)")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ResNet18, SmallCNN  # noqa: E402

N_CLASSES = 10
LINF_SLACK = 1e-6
# Attributes of torchattacks' attack objects worth reporting (those an attack lacks are skipped).
REPORTED = ["eps", "norm", "steps", "n_queries", "n_restarts", "loss", "thr_decr", "eot_iter", "n_target_classes",
            "multi_targeted", "alpha_max", "eta", "beta", "p_init", "rescale_schedule", "seed"]


def require_packages():
    missing = []
    try:
        import torchattacks  # noqa: F401
    except ImportError:
        missing.append("torchattacks==3.5.1")
    try:
        import safetensors  # noqa: F401
    except ImportError:
        missing.append("safetensors")
    if missing:
        sys.exit("bench_autoattack: missing Python packages; install them with\n"
                 f"    pip install --no-deps {' '.join(missing)}\n"
                 "(--no-deps keeps pip from replacing a CPU torch with a CUDA one)")


# ---------------------------------------------------------------------------------------------- data

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find_file(directory, names):
    for name in names:
        for candidate in (os.path.join(directory, name), os.path.join(directory, "cifar-10-batches-bin", name)):
            if os.path.exists(candidate):
                return candidate
    sys.exit(f"bench_autoattack: none of {names} in {directory} (use --data-dir)")


def load_test_points(dataset, directory, n):
    """The first n test images as float32 in [0, 1], NCHW, and their labels."""
    if dataset == "cifar10":
        raw = np.fromfile(find_file(directory, ["test_batch.bin"]), dtype=np.uint8).reshape(-1, 3073)[:n]
        images, labels = raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0]
    else:
        images = read_idx(find_file(directory, ["t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"]))[:n]
        labels = read_idx(find_file(directory, ["t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"]))[:n]
        images = images.reshape(-1, 1, 28, 28)
    if len(labels) < n:
        sys.exit(f"bench_autoattack: the test set has only {len(labels)} points, --n {n} asked for more")
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


# --------------------------------------------------------------------------------------------- model

def load_checkpoint(path):
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, metadata


def build_model(path, arch_option):
    """The checkpoint in a PyTorch module, eval mode; also its architecture and metadata."""
    tensors, meta = load_checkpoint(path)
    stored = meta.get("arch")
    if stored and arch_option and stored != arch_option:
        sys.exit(f"bench_autoattack: {path} holds a '{stored}' model but --arch {arch_option} was given")
    arch = arch_option or stored or "smallcnn"
    if arch == "smallcnn":
        # Widths from the weights: a compacted SmallCNN's layers are narrower.
        names = [n + ".weight" for n in ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2")]
        missing = [n for n in names if n not in tensors]
        if missing:
            sys.exit(f"bench_autoattack: {path} is not a SmallCNN checkpoint (no {', '.join(missing)})")
        model = SmallCNN(tuple(int(tensors[n].shape[0]) for n in names))
    elif arch == "resnet18":
        channels = dict((k, int(v)) for k, v in (e.split("=") for e in meta.get("channels", "").split(",") if e))
        model = ResNet18(float(meta.get("width", "1")), channels)
    else:
        sys.exit(f"bench_autoattack: no PyTorch definition of '{arch}' in scripts/torch_models.py (smallcnn, resnet18)")
    state, unmasked = {}, 0
    for name, value in tensors.items():
        if name.endswith(("_mask", "_momentum")):
            continue
        mask = tensors.get(name + "_mask")
        if mask is not None:
            unmasked += int(((value != 0) & (mask == 0)).sum())
            value = value * mask
        state[name] = value.long() if name.endswith("num_batches_tracked") else value.float()
    model.load_state_dict(state, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    masks = [t for k, t in tensors.items() if k.endswith("_mask")]
    info = {"arch": arch, "metadata": meta, "unmaskedWeightsZeroed": unmasked,
            "maskedFraction": float(sum(int((m == 0).sum()) for m in masks) / max(1, sum(m.numel() for m in masks)))}
    return model, info


def predict(model, x, batch_size):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


# ------------------------------------------------------------------------------------------ the peer

def standard_attacks(model, eps, seed):
    """AutoAttack 'standard' (L-inf) from torchattacks' classes, with AutoAttack's parameters."""
    import torchattacks as ta
    return [
        ("apgd-ce", ta.APGD(model, norm="Linf", eps=eps, steps=100, n_restarts=1, seed=seed, loss="ce", eot_iter=1, rho=0.75)),
        ("apgd-t", ta.APGDT(model, norm="Linf", eps=eps, steps=100, n_restarts=1, seed=seed, eot_iter=1, rho=0.75,
                            n_classes=N_CLASSES)),
        ("fab-t", ta.FAB(model, norm="Linf", eps=eps, steps=100, n_restarts=1, alpha_max=0.1, eta=1.05, beta=0.9,
                         seed=seed, multi_targeted=True, n_classes=N_CLASSES)),
        ("square", ta.Square(model, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, p_init=0.8, loss="margin",
                             resc_schedule=True, seed=seed)),
    ]


def describe(attack):
    """The class and the reported hyper-parameters of a torchattacks attack object."""
    params = {k: getattr(attack, k) for k in REPORTED if not callable(getattr(attack, k, print))}
    if "thr_decr" in params:
        params["rho"] = params.pop("thr_decr")
    return {"class": f"torchattacks.{type(attack).__name__}", **params}


def torchattacks_autoattack_defaults(model, eps):
    """What the installed torchattacks.AutoAttack(version='standard') would run (seed left at its default)."""
    import torchattacks as ta
    auto = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=N_CLASSES)
    out = [describe(a) for a in auto._autoattack.attacks]
    for d in out:
        d["seed"] = "time.time() (seed=None)"
    return out


def valid_successes(model, x, adv, y, eps):
    """Points the attack fooled with a valid adversarial point; and how many fooled ones were invalid."""
    with torch.no_grad():
        fooled = model(adv).argmax(1) != y
    flat = (adv - x).abs().flatten(1)
    valid = (torch.isfinite(adv).flatten(1).all(1) & (flat.amax(1) <= eps + LINF_SLACK)
             & (adv.flatten(1).amin(1) >= 0) & (adv.flatten(1).amax(1) <= 1))
    return fooled & valid, int((fooled & ~valid).sum())


def run_peer(model, x, y, eps, batch_size, seed):
    """The chained AutoAttack; per attack the robust accuracy after it and its time."""
    n = len(y)
    start = time.perf_counter()
    correct = predict(model, x, batch_size) == y
    clean_seconds = time.perf_counter() - start
    robust = correct.clone()
    fooled_by = [None if c else "clean" for c in correct.tolist()]
    attacks, entries = standard_attacks(model, eps, seed), []
    for name, attack in attacks:
        t0, rejected, max_linf = time.perf_counter(), 0, 0.0
        todo = robust.nonzero().flatten()
        for i in range(0, len(todo), batch_size):
            idx = todo[i:i + batch_size]
            adv = attack(x[idx], y[idx]).detach()
            ok, bad = valid_successes(model, x[idx], adv, y[idx], eps)
            rejected += bad
            if ok.any():
                max_linf = max(max_linf, float((adv[ok] - x[idx][ok]).abs().amax()))
            for j in idx[ok].tolist():
                fooled_by[j] = name
            robust[idx[ok]] = False
        seconds = time.perf_counter() - t0
        entries.append({"name": name, "attacked": len(todo), "robustCount": int(robust.sum()),
                        "robustAccuracy": float(robust.sum()) / n, "seconds": seconds, "rejected": rejected,
                        "maxLinfOfSuccesses": max_linf, "params": describe(attack)})
        print(f"  peer {name:8s} on {len(todo):5d} points: robust {100 * float(robust.sum()) / n:6.2f}%  "
              f"{seconds:8.1f} s" + (f"  ({rejected} rejected: outside the eps ball or [0,1])" if rejected else ""),
              file=sys.stderr, flush=True)
    return {"engine": f"torchattacks {__import__('torchattacks').__version__} on torch {torch.__version__}",
            "points": n, "cleanAccuracy": float(correct.sum()) / n, "cleanSeconds": clean_seconds,
            "robustAccuracy": float(robust.sum()) / n, "attacks": entries,
            "seconds": time.perf_counter() - start, "perPoint": {"clean": correct.tolist(), "robust": robust.tolist(),
                                                                 "fooledBy": fooled_by}}


# -------------------------------------------------------------------------------------- advprune run

def dig(obj, *path):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def accuracy(entry, points):
    """A fraction from `robustAccuracy`, or from `robustCorrect`/`points` (Codable drops computed vars)."""
    if not isinstance(entry, dict):
        return None
    for key in ("robustAccuracy", "accuracy"):
        if isinstance(entry.get(key), (int, float)):
            return float(entry[key])
    count = next((entry[k] for k in ("robustCorrect", "robust", "robustCount") if isinstance(entry.get(k), int)), None)
    total = entry.get("points") or points
    return count / total if count is not None and total else None


def run_advprune(args, dataset, needs_arch, arch, per_point_path):
    binary = args.advprune
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        sys.exit(f"bench_autoattack: no advprune executable at {binary} (build it, pass --advprune, or use --peer-only)")
    cmd = [binary, "attack", args.checkpoint, "--attack", "autoattack", "--version", "standard", "--eps", repr(args.eps),
           "--n", str(args.n), "--batch-size", str(args.batch_size), "--device", "cpu", "--json", "--quiet",
           "--per-point", per_point_path, "--dataset", dataset]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if needs_arch:
        cmd += ["--arch", arch]
    print("advprune: " + " ".join(cmd), file=sys.stderr, flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        hint = ""
        if re.search(r"autoattack|--version|--per-point|unknown|unexpected argument", proc.stderr, re.I):
            hint = ("\nThis advprune does not seem to support `attack --attack autoattack --version standard "
                    "--per-point` yet; rebuild it, or run the PyTorch half alone with --peer-only.")
        sys.exit(f"bench_autoattack: advprune failed (exit {proc.returncode}):\n{proc.stderr.strip()}{hint}")
    text = proc.stdout
    if re.fullmatch(r"\s*v?\d+(\.\d+)*\S*\s*", text):
        # swift-argument-parser answers a `--version` that no option of the subcommand consumed
        # (or that sits beside an option it failed to decode) with the root's version, exit 0.
        sys.exit(f"bench_autoattack: advprune printed its version ({text.strip()}) instead of a result: this "
                 "advprune has no `attack --version` option, i.e. no AutoAttack yet (or one of the options "
                 "above failed to parse); rebuild it, or run the PyTorch half alone with --peer-only.")
    try:
        result = json.loads(text)
    except json.JSONDecodeError:
        try:
            result = json.loads(text[text.index("{"):text.rindex("}") + 1])
        except ValueError:
            sys.exit(f"bench_autoattack: advprune's stdout is not one JSON object:\n{text[:2000]}")
    evaluation = dig(result, "evaluation") or {}
    points = evaluation.get("points") or args.n
    attacks = []
    for entry in evaluation.get("attacks") or evaluation.get("stages") or []:  # `stages` in the first drafts
        if isinstance(entry, dict):
            attacks.append({"name": str(entry.get("name", "?")), "robustAccuracy": accuracy(entry, points),
                            "seconds": entry.get("seconds"), "rejected": entry.get("rejected"), "raw": entry})
    clean = evaluation.get("cleanAccuracy")
    if clean is None and isinstance(evaluation.get("cleanCorrect"), int):
        clean = evaluation["cleanCorrect"] / points
    out = {"engine": f"advprune ({binary})", "command": cmd, "points": points, "cleanAccuracy": clean,
           "robustAccuracy": accuracy(evaluation, points), "attacks": attacks, "seconds": evaluation.get("seconds"),
           "wallSeconds": wall, "raw": result}
    out["perPoint"] = read_per_point(per_point_path)
    return out


def read_per_point(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"bench_autoattack: cannot read advprune's per-point file {path}: {e}", file=sys.stderr)
        return None
    robust = data.get("robust") if isinstance(data, dict) else None
    if robust is None and isinstance(data, dict):  # one level down, in case it is nested
        robust = next((v["robust"] for v in data.values() if isinstance(v, dict) and isinstance(v.get("robust"), list)), None)
    if not isinstance(robust, list):
        print(f"bench_autoattack: {path} has no list `robust`", file=sys.stderr)
        return None
    out = {"robust": [bool(v) for v in robust]}
    for key in ("clean", "correct"):
        if isinstance(data.get(key), list):
            out["clean"] = [bool(v) for v in data[key]]
    entries = data.get("points")  # one object per point: index, label, clean, robust, brokenBy, distance
    if isinstance(entries, list) and len(entries) == len(robust) and all(isinstance(e, dict) for e in entries):
        if "clean" not in out and all("clean" in e for e in entries):
            out["clean"] = [bool(e["clean"]) for e in entries]
        out["brokenBy"] = [e.get("brokenBy") for e in entries]
    return out


# ---------------------------------------------------------------------------------------- comparison

def key(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def tally(names):
    out = {}
    for name in names:
        out[str(name)] = out.get(str(name), 0) + 1
    return out


def compare(adv, peer):
    out = {}
    if adv.get("robustAccuracy") is not None:
        out["robustAccuracyDifferencePoints"] = 100 * (adv["robustAccuracy"] - peer["robustAccuracy"])
    if adv.get("cleanAccuracy") is not None:
        out["cleanAccuracyDifferencePoints"] = 100 * (adv["cleanAccuracy"] - peer["cleanAccuracy"])
    if adv.get("seconds"):
        out["speedRatioPeerOverAdvprune"] = peer["seconds"] / adv["seconds"]
    if adv.get("wallSeconds"):
        out["speedRatioPeerOverAdvpruneWall"] = peer["seconds"] / adv["wallSeconds"]
    pp = adv.get("perPoint")
    if pp:
        a, p = pp["robust"], peer["perPoint"]["robust"]
        if len(a) != len(p):
            out["perPointProblem"] = f"advprune lists {len(a)} points, the peer {len(p)}"
        else:
            only_a = [i for i in range(len(a)) if a[i] and not p[i]]
            only_p = [i for i in range(len(a)) if p[i] and not a[i]]
            out["robustAdvpruneOnly"], out["robustPeerOnly"] = len(only_a), len(only_p)
            out["robustAdvpruneOnlyIndices"], out["robustPeerOnlyIndices"] = only_a[:100], only_p[:100]
            out["robustAdvpruneOnlyFooledByPeer"] = tally(peer["perPoint"]["fooledBy"][i] for i in only_a)
            if pp.get("brokenBy"):
                out["robustPeerOnlyBrokenByAdvprune"] = tally(pp["brokenBy"][i] for i in only_p)
        if "clean" in pp and len(pp["clean"]) == len(peer["perPoint"]["clean"]):
            out["cleanDisagreements"] = sum(a != b for a, b in zip(pp["clean"], peer["perPoint"]["clean"]))
    return out


def fmt(value, scale=1.0, spec="8.2f"):
    return format(value * scale, spec) if isinstance(value, (int, float)) else format("-", ">" + spec.split(".")[0])


def print_report(report):
    cfg, peer, adv, cmp_ = report["config"], report["peer"], report.get("advprune"), report.get("comparison", {})
    print(f"\nAutoAttack standard, L-inf eps {cfg['eps']:g}, first {cfg['n']} {cfg['dataset']} test points, "
          f"{cfg['arch']}, batch {cfg['batchSize']}")
    print(f"CPU: {cfg['cpu']} ({cfg['cpus']} logical); torch threads {cfg['torchThreads']}; peer: {peer['engine']}")
    print(f"\n{'':10s} {'advprune':>21s}   {'torchattacks':>21s}")
    print(f"{'attack':10s} {'robust %':>10s} {'time s':>10s}   {'robust %':>10s} {'time s':>10s}")
    adv_attacks = {key(a["name"]): a for a in (adv or {}).get("attacks", [])}
    adv_list = (adv or {}).get("attacks", [])
    print(f"{'clean':10s} {fmt(adv and adv['cleanAccuracy'], 100, '10.2f')} {'':>10s}   "
          f"{fmt(peer['cleanAccuracy'], 100, '10.2f')} {fmt(peer['cleanSeconds'], 1, '10.1f')}")
    for i, p in enumerate(peer["attacks"]):
        a = adv_attacks.get(key(p["name"])) or (adv_list[i] if i < len(adv_list) else {})
        print(f"{p['name']:10s} {fmt(a.get('robustAccuracy'), 100, '10.2f')} {fmt(a.get('seconds'), 1, '10.1f')}   "
              f"{fmt(p['robustAccuracy'], 100, '10.2f')} {fmt(p['seconds'], 1, '10.1f')}")
    print(f"{'total':10s} {fmt(adv and adv['robustAccuracy'], 100, '10.2f')} {fmt(adv and adv['seconds'], 1, '10.1f')}   "
          f"{fmt(peer['robustAccuracy'], 100, '10.2f')} {fmt(peer['seconds'], 1, '10.1f')}")
    if adv:
        print(f"\nadvprune wall time (subprocess, with startup and loading): {adv['wallSeconds']:.1f} s")
        if "speedRatioPeerOverAdvprune" in cmp_:
            print(f"speed ratio peer/advprune: {cmp_['speedRatioPeerOverAdvprune']:.2f}x "
                  f"({cmp_['speedRatioPeerOverAdvpruneWall']:.2f}x against advprune's wall time)")
        if "robustAccuracyDifferencePoints" in cmp_:
            print(f"robust accuracy advprune - peer: {cmp_['robustAccuracyDifferencePoints']:+.2f} points")
        if cmp_.get("cleanAccuracyDifferencePoints"):
            print(f"WARNING: clean accuracies differ by {cmp_['cleanAccuracyDifferencePoints']:+.2f} points: "
                  "not the same weights or points?")
        if "robustAdvpruneOnly" in cmp_:
            by = cmp_["robustAdvpruneOnlyFooledByPeer"]
            print(f"per point: {cmp_['robustAdvpruneOnly']} robust for advprune only"
                  + (f" (the peer's successes there: {by})" if by else "")
                  + f", {cmp_['robustPeerOnly']} robust for the peer only"
                  + (f" (advprune's successes there: {cmp_['robustPeerOnlyBrokenByAdvprune']})"
                     if cmp_.get("robustPeerOnlyBrokenByAdvprune") else ""))
        elif "perPointProblem" in cmp_:
            print("per point: " + cmp_["perPointProblem"])
        else:
            print("per point: advprune wrote no per-point file")
        rejected = {a["name"]: a["rejected"] for a in adv["attacks"] if a.get("rejected")}
        if rejected:
            print(f"advprune rejected claimed successes (verification): {rejected}")
    rejected = sum(p["rejected"] for p in peer["attacks"])
    if rejected:
        print(f"peer: {rejected} successes rejected (outside the eps ball or [0,1]); not counted")
    print("\npeer attacks used:")
    for p in peer["attacks"]:
        print(f"  {p['params']}")
    print("torchattacks.AutoAttack(version='standard') itself would use (built with this eps; "
          "its own default eps is 8/255):")
    for d in report["torchattacksAutoAttackDefaults"]:
        print(f"  {d}")


# ---------------------------------------------------------------------------------------------- main

def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def parse_args():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="advprune checkpoint (.safetensors)")
    ap.add_argument("--eps", type=float, default=0.1, help="L-inf radius (default 0.1)")
    ap.add_argument("--n", type=int, default=1000, help="first N test points (default 1000)")
    ap.add_argument("--batch-size", type=int, default=500, help="attack batch size for both engines (default 500)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--arch", choices=["smallcnn", "resnet18"], help="default: the checkpoint's metadata, else smallcnn")
    ap.add_argument("--dataset", choices=["fashion-mnist", "mnist", "cifar10"],
                    help="default: the checkpoint's metadata, else fashion-mnist (cifar10 for resnet18)")
    ap.add_argument("--data-dir", help="directory of the test files (default: /usr/share/datasets/<dataset>, "
                                       "data/cifar-10-batches-bin for cifar10)")
    ap.add_argument("--advprune", default=os.path.join(root, ".build", "release", "advprune"),
                    help="advprune executable (default .build/release/advprune)")
    ap.add_argument("--per-point", help="where advprune writes its per-point file (default: a temporary file)")
    ap.add_argument("--peer-only", action="store_true", help="run only the PyTorch half")
    ap.add_argument("--seed", type=int, default=0, help="seed of the peer's attacks (default 0)")
    ap.add_argument("--json", dest="json_out", help="write everything measured to this file")
    args = ap.parse_args()
    if args.n < 1 or args.batch_size < 1 or args.eps <= 0:
        ap.error("--n and --batch-size must be >= 1 and --eps > 0")
    return args


def main():
    args = parse_args()
    require_packages()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model, info = build_model(args.checkpoint, args.arch)
    arch, meta = info["arch"], info["metadata"]
    dataset = args.dataset or meta.get("dataset") or ("cifar10" if arch == "resnet18" else "fashion-mnist")
    if (dataset == "cifar10") != (arch == "resnet18"):
        sys.exit(f"bench_autoattack: {arch} does not take {dataset} images")
    data_dir = args.data_dir or ("data/cifar-10-batches-bin" if dataset == "cifar10" else f"/usr/share/datasets/{dataset}")
    x, y = load_test_points(dataset, data_dir, args.n)
    if info["unmaskedWeightsZeroed"]:
        print(f"bench_autoattack: {info['unmaskedWeightsZeroed']} weights were nonzero under a zero mask; "
              "zeroed them", file=sys.stderr)

    report = {"config": {"checkpoint": os.path.abspath(args.checkpoint), "arch": arch, "dataset": dataset,
                         "dataDir": data_dir, "eps": args.eps, "n": args.n, "batchSize": args.batch_size,
                         "seed": args.seed, "torchThreads": torch.get_num_threads(), "cpus": os.cpu_count(),
                         "cpu": cpu_name(), "torch": torch.__version__, "python": platform.python_version()},
              "model": info, "torchattacksAutoAttackDefaults": torchattacks_autoattack_defaults(model, args.eps)}

    if not args.peer_only:  # advprune first: a binary without AutoAttack fails before the long peer run
        with tempfile.TemporaryDirectory() as tmp:
            per_point = args.per_point or os.path.join(tmp, "per-point.json")
            report["advprune"] = run_advprune(args, dataset, "arch" not in meta, arch, per_point)
        a = report["advprune"]
        print(f"advprune: clean {fmt(a['cleanAccuracy'], 100, '.2f')}%  robust {fmt(a['robustAccuracy'], 100, '.2f')}%"
              f"  {fmt(a['seconds'], 1, '.1f')} s (wall {a['wallSeconds']:.1f} s)", file=sys.stderr, flush=True)

    print(f"peer: torchattacks AutoAttack standard on {args.n} points", file=sys.stderr, flush=True)
    report["peer"] = run_peer(model, x, y, args.eps, args.batch_size, args.seed)
    if "advprune" in report:
        report["comparison"] = compare(report["advprune"], report["peer"])
    print_report(report)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"\nwrote {args.json_out}")


if __name__ == "__main__":
    main()
