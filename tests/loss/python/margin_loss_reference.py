#!/usr/bin/env python3
"""Independent NumPy computation of the margin loss of "Sampling Matters in Deep Embedding Learning".

Used by tests/loss/margin_loss_test.cpp (numpy_loss), which compares MarginLoss's terms, value and
beta gradient with this program's output.

Usage: margin_loss_reference.py X DIM LABELS ANCHORS POSITIVES NEGATIVES BETA MARGIN NU

X          comma-separated embeddings, row-major, N rows of DIM values
DIM        embedding dimension
LABELS     comma-separated class of each of the N rows
ANCHORS, POSITIVES, NEGATIVES   comma-separated row indices, one triplet per position
BETA       comma-separated beta of every class
MARGIN, NU the margin alpha and the beta regularisation weight nu

For every triplet, with beta_t = BETA[LABELS[anchor]] and d(i, j) = sqrt(|x_i - x_j|^2 + 1e-8):
  pos = max(d(a, p) - beta_t + margin, 0),  neg = max(beta_t - d(a, n) + margin, 0).
Prints one line (%.17g, space separated):
  hinge = sum(pos) + sum(neg), reg = nu * sum(beta_t), count = #(pos > 0) + #(neg > 0),
  loss = (hinge + reg) / count (hinge when count is 0), then d loss / d beta for every class.
"""
import sys

import numpy as np


def arr(s, t=float):
    return np.array([t(v) for v in s.split(",")])


def main(argv):
    x = arr(argv[1]).reshape(-1, int(argv[2]))
    y = arr(argv[3], int)
    a, p, n = arr(argv[4], int), arr(argv[5], int), arr(argv[6], int)
    beta = arr(argv[7])
    margin, nu = float(argv[8]), float(argv[9])
    bt = beta[y[a]]
    d_ap = np.sqrt(((x[p] - x[a]) ** 2).sum(1) + 1e-8)
    d_an = np.sqrt(((x[n] - x[a]) ** 2).sum(1) + 1e-8)
    pos = np.maximum(d_ap - bt + margin, 0)
    neg = np.maximum(bt - d_an + margin, 0)
    hinge = pos.sum() + neg.sum()
    reg = nu * bt.sum()
    count = float((pos > 0).sum() + (neg > 0).sum())
    loss = (hinge + reg) / count if count > 0 else hinge
    gbeta = np.zeros_like(beta)
    if count > 0:
        np.add.at(gbeta, y[a], (-(pos > 0).astype(float) + (neg > 0).astype(float) + nu) / count)
    print(" ".join("%.17g" % v for v in [hinge, reg, count, loss] + list(gbeta)))


if __name__ == "__main__":
    if len(sys.argv) != 10:
        sys.exit(__doc__)
    main(sys.argv)
