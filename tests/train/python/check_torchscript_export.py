"""Embeds the images of a dml embedding export again with a TorchScript model and compares.

Usage: check_torchscript_export.py MODEL.ts EXPORT.h5 SHARD_DIR SPLIT

What a Python user does with a model from launch/export_torchscript.py: torch.jit.load it, read the
images (here: the shards' rows that the export records), center-crop them to the model's crop size,
tile gray images to RGB, normalise with the ImageNet mean and std, and forward. The result must equal
dist_eval's exported embeddings within 1e-5. Uses torch, h5py and NumPy only (no dml code). Prints
the largest difference and "ok", or raises.
"""
import glob
import sys

import h5py
import numpy as np
import torch

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


def main():
    model_path, export_path, shard_dir, split = sys.argv[1:5]
    model = torch.jit.load(model_path)
    crop = int(model.crop_size)
    images = []
    for shard in sorted(glob.glob(f"{shard_dir}/{split}-*-of-*.h5")):
        with h5py.File(shard, "r") as s:
            images.append(s["images"][()])
    images = np.concatenate(images)  # [N, H, W, C] uint8, rows in the split's order
    with h5py.File(export_path, "r") as f:
        expected = f["embeddings"][()]
        rows = f["rows"][()]
    x = images[rows]
    h, w = x.shape[1:3]
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    x = x[:, y0:y0 + crop, x0:x0 + crop, :]
    if x.shape[3] == 1:
        x = np.repeat(x, 3, axis=3)
    x = x.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    x = (x - MEAN) / STD
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert got.shape == expected.shape, (got.shape, expected.shape)
    diff = float(np.abs(got - expected).max())
    print(f"max abs difference {diff:.3e}")
    assert diff <= 1e-5, diff
    print("ok")


if __name__ == "__main__":
    main()
