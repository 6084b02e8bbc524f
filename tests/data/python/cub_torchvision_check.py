#!/usr/bin/env python3
"""Checks one image of a dml_prepare --source cub output against torchvision + NumPy + torch.

Used by tests/data/prepare_cub_test.cpp (PrepareCub.SplitsLabelsIdsAndCrops) on the small CUB-layout
directory that test builds: an independent decode, crop and resize of the lossless image
images/101.Kappa/k1.png (CUB image id 2, bounding box x=10 y=5 w=30 h=35, test split shard 0).

Usage: cub_torchvision_check.py CUB_ROOT SHARD_DIR

CUB_ROOT   the CUB_200_2011-like directory (holds images/101.Kappa/k1.png)
SHARD_DIR  dml_prepare's output (holds test-00000-of-00002.h5)

torchvision decodes the PNG (RGB), NumPy crops rows 5:min(40, H) and columns 10:min(40, W), torch's
bilinear interpolation (half-pixel centres, no antialias) resizes to 256x256, rounded. Prints the
largest difference to the shard's image; exits 0 when it is at most 1 grey level (OpenCV's
fixed-point INTER_LINEAR, which dml uses, may round differently), else 1.
"""
import sys

import h5py
import numpy as np
import torch
import torchvision


def main(root, out):
    img = torchvision.io.read_image(root + "/images/101.Kappa/k1.png").permute(1, 2, 0).numpy()  # HWC RGB
    crop = img[5:min(5 + 35, img.shape[0]), 10:min(10 + 30, img.shape[1])]
    t = torch.from_numpy(crop).permute(2, 0, 1)[None].float()
    ref = torch.nn.functional.interpolate(t, size=(256, 256), mode="bilinear", align_corners=False)
    ref = ref.round().clamp(0, 255)[0].permute(1, 2, 0).numpy()
    with h5py.File(out + "/test-00000-of-00002.h5", "r") as f:
        ids = list(f["ids"][:])
        got = f["images"][ids.index(2)].astype(np.float32)
    print("maxdiff", np.abs(got - ref).max())
    return 0 if np.abs(got - ref).max() <= 1 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
