#!/usr/bin/env python3
"""PyTorch's semantics for SmallCNN, written in numpy: reads an advprune safetensors checkpoint
and prints the logits of the first N Fashion-MNIST test images as JSON.

The CLI tests compare these logits with `advprune predict`, which checks what a PyTorch user
relies on: the state_dict names, weight layouts (OIHW, [out, in]), cross-correlation, NCHW
flatten order and Linear's y = x W^T + b. Usage: smallcnn_reference.py CHECKPOINT DATA_DIR N
"""
import gzip, json, struct, sys
import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", entry
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(entry["shape"]).astype(np.float64)
    return tensors


def conv2d(x, w, b):  # x [N,C,H,W], w [O,C,K,K]: cross-correlation, stride 1, no padding
    n, c, h, width = x.shape
    o, _, k, _ = w.shape
    oh, ow = h - k + 1, width - k + 1
    cols = np.stack([x[:, :, i:i + oh, j:j + ow] for i in range(k) for j in range(k)], axis=2)  # N,C,K*K,OH,OW
    return np.einsum("nckhw,ock->nohw", cols, w.reshape(o, c, k * k)) + b[None, :, None, None]


def maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def forward(t, x):
    relu = lambda v: np.maximum(v, 0)
    x = relu(conv2d(x, t["conv1.weight"], t["conv1.bias"]))
    x = maxpool2(relu(conv2d(x, t["conv2.weight"], t["conv2.bias"])))
    x = relu(conv2d(x, t["conv3.weight"], t["conv3.bias"]))
    x = maxpool2(relu(conv2d(x, t["conv4.weight"], t["conv4.bias"])))
    x = x.reshape(x.shape[0], -1)
    x = relu(x @ t["fc1.weight"].T + t["fc1.bias"])
    x = relu(x @ t["fc2.weight"].T + t["fc2.bias"])
    return x @ t["fc3.weight"].T + t["fc3.bias"]


def main():
    path, data_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tensors = load_safetensors(path)
    for name in list(tensors):  # a pruned checkpoint's weights are already zero where masked
        if name.endswith("_mask"):
            base = tensors.pop(name)
            tensors[name[:-5]] = tensors[name[:-5]] * base
    with gzip.open(f"{data_dir}/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read()[16:], dtype=np.uint8)[: n * 784]
    x = images.reshape(n, 1, 28, 28).astype(np.float64) / 255.0
    print(json.dumps(forward(tensors, x).tolist()))


if __name__ == "__main__":
    main()
