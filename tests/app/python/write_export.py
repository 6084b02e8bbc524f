#!/usr/bin/env python3
"""Writes a small dml embedding export (format "dml-embeddings", version 1) with h5py, for
tests/app/pictures_test.cpp, from a shard set on disk, as `dist_eval --export` documents it.

Usage: write_export.py SHARD_DIR SPLIT OUT.h5 [--dim D] [--seed S] [--class-names a,b,...]
                       [--data-path-attr DIR] [--format F] [--format-version V] [--no-format]

Reads the split's shards (SHARD_DIR/SPLIT-0000i-of-0000S.h5, in index order; global row r counts
the rows of shard 0, then shard 1, ...) and exports every row once, in a fixed shuffled order
(seeded), so `rows` is not simply 0..N-1: rows[i] is the row, labels[i] and ids[i] are the shards'
label and id of that row. embeddings[i] is the L2-normalised sum of a random unit vector of its
class (one per class, D dimensions) and Gaussian noise of standard deviation 0.1 per coordinate,
so the classes are well separated. Attributes: format, format_version, model "small_convnet",
embed_dim D, checkpoint "test-best.pt", data_path (SHARD_DIR, or --data-path-attr), split,
num_classes (from the shards) and, with --class-names, class_names. --format / --format-version
change those two attributes; --no-format leaves `format` out (for the bad-input tests).
"""
import argparse
import glob
import os

import h5py
import numpy as np


def read_split(shard_dir, split):
    count = int(glob.glob(os.path.join(shard_dir, f"{split}-00000-of-*.h5"))[0][-8:-3])
    labels, ids, num_classes = [], [], None
    for i in range(count):
        with h5py.File(os.path.join(shard_dir, f"{split}-{i:05d}-of-{count:05d}.h5"), "r") as f:
            labels.append(f["labels"][()])
            ids.append(f["ids"][()])
            num_classes = int(f.attrs["num_classes"])
    return np.concatenate(labels).astype(np.int64), np.concatenate(ids).astype(np.int64), num_classes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shard_dir")
    parser.add_argument("split")
    parser.add_argument("out")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--class-names", default=None)
    parser.add_argument("--data-path-attr", default=None)
    parser.add_argument("--format", default="dml-embeddings")
    parser.add_argument("--format-version", type=int, default=1)
    parser.add_argument("--no-format", action="store_true")
    args = parser.parse_args()

    labels, ids, num_classes = read_split(args.shard_dir, args.split)
    rng = np.random.default_rng(args.seed)
    rows = rng.permutation(len(labels)).astype(np.int64)
    centres = rng.normal(size=(num_classes, args.dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    embeddings = centres[labels[rows]] + rng.normal(scale=0.1, size=(len(rows), args.dim))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)

    with h5py.File(args.out, "w") as f:
        f.create_dataset("embeddings", data=embeddings.astype(np.float32))
        f.create_dataset("labels", data=labels[rows])
        f.create_dataset("ids", data=ids[rows])
        f.create_dataset("rows", data=rows)
        if not args.no_format:
            f.attrs["format"] = args.format
        f.attrs["format_version"] = args.format_version
        f.attrs["model"] = "small_convnet"
        f.attrs["embed_dim"] = args.dim
        f.attrs["checkpoint"] = "test-best.pt"
        f.attrs["data_path"] = args.data_path_attr if args.data_path_attr is not None else args.shard_dir
        f.attrs["split"] = args.split
        f.attrs["num_classes"] = num_classes
        if args.class_names is not None:
            f.attrs["class_names"] = args.class_names.split(",")


if __name__ == "__main__":
    main()
