#!/usr/bin/env python3
"""scikit-learn's k-means and NMI, the independent reference for dml's kmeans and NMI.

Used by tests/eval/clustering_test.cpp, which compares dml::kmeans (10 k-means++ starts, the lowest
inertia kept) and normalized_mutual_information with this program's output.

Usage: kmeans_reference.py DATA_TXT K N_INIT SEED ASSIGNMENTS

DATA_TXT     text matrix (np.loadtxt): one row per point, its coordinates then its class label
K            clusters
N_INIT       scikit-learn's n_init: k-means++ starts, the lowest inertia kept
SEED         scikit-learn's random_state
ASSIGNMENTS  comma-separated cluster of every point found by dml (any integers)

Runs sklearn.cluster.KMeans(K, init="k-means++", n_init=N_INIT, random_state=SEED,
algorithm="lloyd", max_iter=100, tol=0), tol=0 so that every start runs Lloyd to a fixed point
as dml does (scikit-learn's k-means++ is its greedy variant, 2 + log K candidates per centre).
Prints one line (%.17g):
  scikit-learn's inertia_,
  normalized_mutual_info_score(labels, scikit-learn's clusters),
  normalized_mutual_info_score(labels, ASSIGNMENTS),
  the inertia of ASSIGNMENTS (float64: every cluster's centroid, the sum of squared differences),
  scikit-learn's inertia of a single start (n_init=1, the same random_state).
"""
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score


def inertia_of(x, assignments):
    total = 0.0
    for c in np.unique(assignments):
        members = x[assignments == c]
        total += ((members - members.mean(axis=0)) ** 2).sum()
    return total


def fit(x, k, n_init, seed):
    return KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=seed, algorithm="lloyd",
                  max_iter=100, tol=0).fit(x)


def main(data_path, k_text, n_init_text, seed_text, assignments_text):
    data = np.loadtxt(data_path, ndmin=2)
    x, labels = data[:, :-1], data[:, -1].astype(np.int64)
    k, n_init, seed = int(k_text), int(n_init_text), int(seed_text)
    assignments = np.array([int(v) for v in assignments_text.split(",")])
    best = fit(x, k, n_init, seed)
    single = fit(x, k, 1, seed)
    values = [
        best.inertia_,
        normalized_mutual_info_score(labels, best.labels_),
        normalized_mutual_info_score(labels, assignments),
        inertia_of(x, assignments),
        single.inertia_,
    ]
    print(" ".join("%.17g" % v for v in values))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
