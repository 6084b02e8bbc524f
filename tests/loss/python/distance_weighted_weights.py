#!/usr/bin/env python3
"""Independent NumPy computation of distance-weighted sampling's negative weights (Wu et al. 2017).

Used by tests/loss/distance_weighted_sampling_test.cpp (numpy_weights), which compares dml's
sampling weights with this program's output.

Usage: distance_weighted_weights.py X_TXT Y_TXT BEGIN COUNT CUTOFF NONZERO_LOSS_CUTOFF

X_TXT      text matrix (np.loadtxt), N rows of d-dimensional embeddings
Y_TXT      text vector, the label of every row
BEGIN, COUNT  the anchors: rows BEGIN .. BEGIN+COUNT-1
CUTOFF     distances are clamped below at CUTOFF
NONZERO_LOSS_CUTOFF  negatives at distance >= this are not admissible

For anchor a and every other-class row j with D = max(|x_a - x_j|, CUTOFF) < NONZERO_LOSS_CUTOFF:
  log w = (2 - d) log D - ((d - 3) / 2) log(1 - D^2 / 4),
normalised per anchor row (with that row's maximum subtracted first, so nothing underflows).
An anchor without admissible negatives gets uniform weights over all other-class rows.
Prints COUNT rows of N weights (%.17g).
"""
import sys

import numpy as np


def main(argv):
    x = np.loadtxt(argv[1], ndmin=2)
    y = np.loadtxt(argv[2], ndmin=1).astype(np.int64)
    b, c, cutoff, nzc = int(argv[3]), int(argv[4]), float(argv[5]), float(argv[6])
    n, d = x.shape
    a = x[b:b + c]
    D = np.sqrt(((a[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    D = np.maximum(D, cutoff)
    adm = (y[None, :] != y[b:b + c, None]) & (D < nzc)
    out = np.zeros((c, n))
    with np.errstate(all="ignore"):
        logw = (2 - d) * np.log(D) - ((d - 3) / 2) * np.log(1 - D ** 2 / 4)
    for i in range(c):
        if adm[i].any():
            lw = logw[i][adm[i]]
            out[i][adm[i]] = np.exp(lw - lw.max()) / np.exp(lw - lw.max()).sum()
        else:
            m = (y != y[b + i]).astype(float)
            out[i] = m / m.sum()
    np.savetxt(sys.stdout, out, fmt="%.17g")


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    main(sys.argv)
