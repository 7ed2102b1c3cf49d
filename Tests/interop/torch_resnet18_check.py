#!/usr/bin/env python3
"""Loads an advprune ResNet18 checkpoint (plain or compacted by `advprune export`) into a PyTorch
CIFAR ResNet18 with `load_state_dict(strict=True)` and prints its eval-mode logits on the first N
images of a CIFAR-10 `test_batch.bin` as JSON.

The channel counts of a compacted file come from its `channels` metadata, as the README tells a
PyTorch user to build the module. Exit 3 when torch is missing (the caller skips).
Usage: torch_resnet18_check.py CHECKPOINT CIFAR_DIR N
"""
import json, struct, sys

try:
    import numpy as np
    import torch, torch.nn as nn, torch.nn.functional as F
except ImportError:
    sys.exit(3)


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


class BasicBlock(nn.Module):
    def __init__(self, cin, mid, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, width, channels):
        super().__init__()
        c = lambda group, published: channels.get(group, max(1, round(published * width)))
        self.conv1 = nn.Conv2d(3, c("stream1", 64), 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c("stream1", 64))
        cin = c("stream1", 64)
        for stage, published in enumerate([64, 128, 256, 512], start=1):
            blocks = []
            for b in range(2):
                cout = c(f"stream{stage}", published)
                blocks.append(BasicBlock(cin, c(f"layer{stage}.{b}.conv1", published), cout, 2 if stage > 1 and b == 0 else 1))
                cin = cout
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.linear = nn.Linear(cin, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(F.avg_pool2d(x, 4).flatten(1))


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
