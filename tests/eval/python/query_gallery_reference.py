#!/usr/bin/env python3
"""Independent NumPy computation of query-against-gallery retrieval metrics (the In-Shop protocol):
Recall@K, P@1, R-Precision and MAP@R.

Used by tests/eval/retrieval_metrics_test.cpp, which compares compute_query_gallery_metrics with
this program's output. Definitions as in "A Metric Learning Reality Check" (Musgrave et al. 2020),
every query row against every gallery row (query and gallery are different sets: nothing is left
out).

Usage: query_gallery_reference.py QUERY_TXT GALLERY_TXT KS

QUERY_TXT, GALLERY_TXT  text matrices (np.loadtxt): one row per sample, the embedding's values then its label
KS                      comma-separated K values of Recall@K (K is capped at the gallery's size)

Distances: float64 Euclidean from direct differences; neighbours ordered by a stable argsort (ties
go to the lower gallery row). R = number of gallery rows of the query's class; queries with R = 0
are left out of R-Precision and MAP@R (but count, as misses, in Recall@K and P@1).
Prints one line (%.17g): Recall@K for every K, P@1, R-Precision, MAP@R.
"""
import sys

import numpy as np


def main(query_path, gallery_path, ks_text):
    query, gallery = np.loadtxt(query_path, ndmin=2), np.loadtxt(gallery_path, ndmin=2)
    ks = [int(k) for k in ks_text.split(",")]
    xq, yq = query[:, :-1], query[:, -1].astype(np.int64)
    xg, yg = gallery[:, :-1], gallery[:, -1].astype(np.int64)
    g = len(yg)
    d = np.sqrt(((xq[:, None, :] - xg[None, :, :]) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")
    same = yg[order] == yq[:, None]
    recall = [same[:, : min(k, g)].any(axis=1).mean() for k in ks]
    p1 = same[:, 0].mean()
    rp, ap = [], []
    for i in range(len(yq)):
        r = int((yg == yq[i]).sum())
        if r == 0:
            continue
        s = same[i, :r]
        rp.append(s.sum() / r)
        ap.append((s * np.cumsum(s) / np.arange(1, r + 1)).sum() / r)
    print(" ".join("%.17g" % v for v in recall + [p1, np.mean(rp), np.mean(ap)]))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
