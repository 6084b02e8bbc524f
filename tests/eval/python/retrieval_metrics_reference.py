#!/usr/bin/env python3
"""Independent NumPy computation of the retrieval metrics: Recall@K, P@1, R-Precision and MAP@R.

Used by tests/eval/retrieval_metrics_test.cpp (numpy_metrics), which compares
compute_retrieval_metrics with this program's output. Definitions as in "A Metric Learning Reality
Check" (Musgrave et al. 2020), every row a query against all other rows.

Usage: retrieval_metrics_reference.py DATA_TXT KS

DATA_TXT  text matrix (np.loadtxt): one row per sample, the embedding's values then its label
KS        comma-separated K values of Recall@K (K is capped at N - 1)

Distances: float64 Euclidean from direct differences, self excluded; neighbours ordered by a stable
argsort (ties go to the lower row index). R = number of other rows of the query's class; queries
with R = 0 are left out of R-Precision and MAP@R (but count in Recall@K and P@1).
Prints one line (%.17g): Recall@K for every K, P@1, R-Precision, MAP@R.
"""
import sys

import numpy as np


def main(data_path, ks_text):
    data = np.loadtxt(data_path, ndmin=2)
    ks = [int(k) for k in ks_text.split(",")]
    x, y = data[:, :-1], data[:, -1].astype(np.int64)
    n = len(y)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, : n - 1]
    same = y[order] == y[:, None]
    recall = [same[:, : min(k, n - 1)].any(axis=1).mean() for k in ks]
    p1 = same[:, 0].mean()
    rp, ap = [], []
    for i in range(n):
        r = int((y == y[i]).sum()) - 1
        if r == 0:
            continue
        s = same[i, :r]
        rp.append(s.sum() / r)
        ap.append((s * np.cumsum(s) / np.arange(1, r + 1)).sum() / r)
    print(" ".join("%.17g" % v for v in recall + [p1, np.mean(rp), np.mean(ap)]))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
