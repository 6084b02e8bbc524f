#!/usr/bin/env python3
"""Independent gzip + NumPy parse of the Fashion-MNIST IDX files.

Used by tests/data/fashion_mnist_test.cpp (reference), which compares dml_prepare's Fashion-MNIST
shards with this program's output.

Usage: fashion_mnist_idx_parse.py SOURCE_DIR OUT_DIR

SOURCE_DIR  holds train-{images-idx3,labels-idx1}-ubyte.gz and t10k-{images-idx3,labels-idx1}-ubyte.gz
            (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist)
OUT_DIR     written: labels.bin, the 70000 labels (train file then test file, so id = index) as
            int64 little-endian; images.bin, the 28x28 uint8 images of ids 0, 1, 12345, 59999,
            60000, 69999 in that order (6 x 784 bytes).

IDX headers are skipped by size (8 bytes for labels, 16 for images), not parsed.
"""
import gzip
import sys

import numpy as np

CHECKED_IDS = [0, 1, 12345, 59999, 60000, 69999]


def idx(src, name, offset):
    with gzip.open(f"{src}/{name}", "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def main(src, out):
    labels = np.concatenate([idx(src, "train-labels-idx1-ubyte.gz", 8), idx(src, "t10k-labels-idx1-ubyte.gz", 8)])
    images = np.concatenate([idx(src, "train-images-idx3-ubyte.gz", 16),
                             idx(src, "t10k-images-idx3-ubyte.gz", 16)]).reshape(-1, 784)
    labels.astype(np.int64).tofile(out + "/labels.bin")
    images[CHECKED_IDS].tofile(out + "/images.bin")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
