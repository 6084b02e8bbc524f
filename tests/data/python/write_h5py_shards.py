#!/usr/bin/env python3
"""Writes a valid format-v1 split with h5py, exactly as include/dml/data/SHARD_FORMAT.md documents.

Used by tests/data/shard_roundtrip_test.cpp (ShardRoundTrip.ReadsFileWrittenByH5py): the one test of
files written by another program than dml (every other shard set of the suites comes from
tests/support/synthetic_shards.h, written by dml's own writer). It covers what h5py does differently:
a contiguous and a chunked images dataset, fixed-length (numpy.bytes_) and variable-length (str)
string attributes, and attribute integer types chosen by h5py/NumPy.

Usage: write_h5py_shards.py OUT_DIR

Writes OUT_DIR/val-00000-of-00002.h5 and OUT_DIR/val-00001-of-00002.h5: split "val", dataset "toy",
K = 4 classes named zero, one, two, three, 6x5 RGB images; class c in shard c % 2 with 3 images
each, in class order; image ids 100 * c + j (j = 0, 1, 2); pixel (y, x, ch) of image `id` is
((y * 5 * 3 + x * 3 + ch) * 3 + id * 17) % 251. Shard 0: contiguous images, fixed-length strings;
shard 1: chunks of one image, variable-length strings.
"""
import sys

import h5py
import numpy as np

H, W, C, K = 6, 5, 3, 4


def image(i):
    return ((np.arange(H * W * C).reshape(H, W, C) * 3 + i * 17) % 251).astype(np.uint8)


def main(out):
    for shard in range(2):
        classes = [c for c in range(K) if c % 2 == shard]
        labels = np.array([c for c in classes for _ in range(3)], dtype=np.int64)
        ids = np.array([100 * c + j for c in classes for j in range(3)], dtype=np.int64)
        with h5py.File(f"{out}/val-{shard:05d}-of-00002.h5", "w") as f:
            chunks = (1, H, W, C) if shard == 1 else None
            f.create_dataset("images", data=np.stack([image(i) for i in ids]), chunks=chunks)
            f.create_dataset("labels", data=labels)
            f.create_dataset("ids", data=ids)
            f.attrs["format_version"] = 1
            if shard == 0:
                f.attrs["dataset"] = np.bytes_("toy")
                f.attrs["split"] = np.bytes_("val")
            else:
                f.attrs["dataset"] = "toy"
                f.attrs["split"] = "val"
            f.attrs["num_classes"] = np.int64(K)
            f.attrs["height"], f.attrs["width"], f.attrs["channels"] = H, W, C
            f.attrs["class_names"] = ["zero", "one", "two", "three"]
            f.attrs["resize"] = 0
            f.attrs["bbox_crop"] = 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
