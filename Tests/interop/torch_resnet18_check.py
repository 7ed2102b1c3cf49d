#!/usr/bin/env python3
"""Loads an advprune ResNet18 checkpoint (plain or compacted by `advprune export`) into a PyTorch
CIFAR ResNet18 with `load_state_dict(strict=True)` and prints its eval-mode logits on the first N
images of a CIFAR-10 `test_batch.bin` as JSON.

The channel counts of a compacted file come from its `channels` metadata, as the README tells a
PyTorch user to build the module. Exit 3 when torch is missing (the caller skips).
Usage: torch_resnet18_check.py CHECKPOINT CIFAR_DIR N
"""
import json, os, struct, sys

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(3)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from torch_models import ResNet18  # noqa: E402


def load(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(body[begin:end], dtype="<f4").reshape(e["shape"]).copy())
    return tensors, meta


def main():
    path, cifar, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tensors, meta = load(path)
    channels = dict((k, int(v)) for k, v in (e.split("=") for e in meta.get("channels", "").split(",") if e))
    model = ResNet18(float(meta.get("width", "1")), channels)
    state = {k: v for k, v in tensors.items() if not k.endswith(("_mask", "_momentum"))}
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            state[k] = v.long()
    model.load_state_dict(state, strict=True)
    model.eval()
    raw = np.frombuffer(open(cifar + "/test_batch.bin", "rb").read(), dtype=np.uint8).reshape(-1, 3073)[:n]
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    with torch.no_grad():
        print(json.dumps(model(x).double().tolist()))


if __name__ == "__main__":
    main()
