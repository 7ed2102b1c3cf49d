#!/usr/bin/env python3
"""Writes a seed corpus of small valid files per parser into DIR/<parser>/ (scripts/fuzz.sh)."""
import glob, json, os, shutil, struct, sys

import numpy as np
import scipy.io

out = sys.argv[1]


def put(parser, name, data):
    os.makedirs(os.path.join(out, parser), exist_ok=True)
    with open(os.path.join(out, parser, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


rng = np.random.default_rng(0)
put("Safetensors", "two-tensors", safetensors({"conv1.weight": rng.standard_normal((2, 1, 3, 3)), "fc.bias": rng.standard_normal(3)}, {"arch": "smallcnn", "epochs": "1"}))
put("Safetensors", "mask", safetensors({"fc.weight": rng.standard_normal((3, 4)), "fc.weight_mask": np.ones((3, 4))}))
put("IDX", "images", struct.pack(">IIII", 0x803, 3, 4, 4) + bytes(range(48)))
put("IDX", "labels", struct.pack(">II", 0x801, 5) + bytes([0, 1, 2, 3, 9]))
import gzip
for name in ("images", "labels"):
    raw = open(os.path.join(out, "IDX", name), "rb").read()
    put("IDXFile", name + ".gz", gzip.compress(raw))
    put("IDXFile", name, raw)
for compressed in (False, True):
    path = os.path.join(out, "svhn.mat")
    scipy.io.savemat(path, {"X": rng.integers(0, 255, (4, 4, 3, 2), dtype=np.uint8), "y": np.array([[1], [10]], dtype=np.uint8)},
                     do_compression=compressed)
    put("MAT", "svhn-compressed" if compressed else "svhn", open(path, "rb").read())
    os.remove(path)
put("CIFAR10", "two-records", bytes([3]) + bytes(rng.integers(0, 255, 3072, dtype=np.uint8)) + bytes([9]) + bytes(3072))
for config in glob.glob(os.path.join(os.path.dirname(__file__), "..", "bench", "*.toml")):
    os.makedirs(os.path.join(out, "BenchConfig"), exist_ok=True)
    shutil.copy(config, os.path.join(out, "BenchConfig", os.path.basename(config)))
