"""Checks a dml embedding export (format version 1) against the shards it came from.

Usage: check_export.py EXPORT.h5 SHARD_DIR SPLIT EXPECTED_N EXPECTED_D RECALL_AT_1

Verifies with h5py and NumPy alone (no dml code): the format attributes, the dataset shapes and
dtypes, that labels and ids equal the shards' labels and ids at the recorded rows (the shards'
rows concatenated in shard-index order), that every embedding has unit length, and that Recall@1
recomputed from the exported embeddings (Euclidean nearest neighbour, the query excluded) equals
the RECALL_AT_1 that dist_eval reported. Prints "ok" and exits 0, or raises.
"""
import glob
import sys

import h5py
import numpy as np


def main():
    path, shard_dir, split, n, d, recall_at_1 = sys.argv[1:7]
    n, d, recall_at_1 = int(n), int(d), float(recall_at_1)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] in ("dml-embeddings", b"dml-embeddings"), f.attrs["format"]
        assert int(f.attrs["format_version"]) == 1
        assert int(f.attrs["embed_dim"]) == d
        emb = f["embeddings"][()]
        labels, ids, rows = f["labels"][()], f["ids"][()], f["rows"][()]
    assert emb.dtype == np.float32 and emb.shape == (n, d), (emb.dtype, emb.shape)
    for a in (labels, ids, rows):
        assert a.dtype == np.int64 and a.shape == (n,), (a.dtype, a.shape)
    shard_labels, shard_ids = [], []
    for shard in sorted(glob.glob(f"{shard_dir}/{split}-*-of-*.h5")):
        with h5py.File(shard, "r") as s:
            shard_labels.append(s["labels"][()])
            shard_ids.append(s["ids"][()])
    shard_labels, shard_ids = np.concatenate(shard_labels), np.concatenate(shard_ids)
    assert np.array_equal(labels, shard_labels[rows]), "labels differ from the shards' at the recorded rows"
    assert np.array_equal(ids, shard_ids[rows]), "ids differ from the shards' at the recorded rows"
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5), "embeddings are not unit length"
    dist = ((emb[:, None, :].astype(np.float64) - emb[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(1)
    ours = float((labels[nearest] == labels).mean())
    assert abs(ours - recall_at_1) < 1e-9, (ours, recall_at_1)
    print("ok")


if __name__ == "__main__":
    main()
