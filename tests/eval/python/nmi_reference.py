#!/usr/bin/env python3
"""Independent NumPy computation of normalised mutual information, NMI = 2 I(Y; C) / (H(Y) + H(C)).

Used by tests/eval/clustering_test.cpp, which compares normalized_mutual_information with this
program's output.

Usage: nmi_reference.py LABELS CLUSTERS

LABELS    comma-separated class of every sample (any integers)
CLUSTERS  comma-separated cluster of every sample (any integers), as many as LABELS

Dense contingency table of the two partitions, natural logarithms. Prints NMI (%.17g).
"""
import sys

import numpy as np


def main(labels_text, clusters_text):
    y = np.array([int(v) for v in labels_text.split(",")])
    c = np.array([int(v) for v in clusters_text.split(",")])
    n = len(y)
    _, yi = np.unique(y, return_inverse=True)
    _, ci = np.unique(c, return_inverse=True)
    table = np.zeros((yi.max() + 1, ci.max() + 1))
    np.add.at(table, (yi, ci), 1)
    p = table / n
    py, pc = p.sum(1), p.sum(0)
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / np.outer(py, pc)[nz])).sum()
    h = -(py * np.log(py)).sum() - (pc * np.log(pc)).sum()
    print("%.17g" % (2 * mi / h))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
