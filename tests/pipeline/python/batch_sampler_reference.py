#!/usr/bin/env python3
"""Independent implementation of the global batch rule documented in include/dml/pipeline/batch_sampler.h.

Used by tests/pipeline/batch_sampler_python_test.cpp, which compares GlobalBatchSampler::global_batch
with this program's output. It has its own Philox4x32-10, Fisher-Yates shuffle, repair of class
repeats inside a replica and wrap-around, written from the documentation, not from the C++.

Usage: batch_sampler_reference.py CASES_TXT

CASES_TXT  one case per line: R B k SEED STEP LABEL_0 LABEL_1 ... (whitespace separated integers):
           R replicas of B images each, k images per class, the seed, the step, and the label of
           every row of the split.
Prints, per case, one line: the global batch's rows (R*B row indices, space separated).

The rule (rules 1-3 of batch_sampler.h): G = R * (B // k) class slots per step, filled by
concatenated keyed Fisher-Yates permutations of the non-empty classes (stream 1, draw = permutation
index), with the repair that keeps a class from recurring inside a replica's chunk when G > C; the
j-th use of class c in a step takes positions (j*k + t) mod n_c, t < k, of a keyed permutation of
its rows (stream 2, index c); class blocks of k consecutive rows.
"""
import sys

M32 = 0xFFFFFFFF


def philox(c, k):
    c = list(c)
    k = list(k)
    for _ in range(10):
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & M32, p1 & M32, ((p0 >> 32) ^ c[3] ^ k[1]) & M32, p0 & M32]
        k = [(k[0] + 0x9E3779B9) & M32, (k[1] + 0xBB67AE85) & M32]
    return c


def below(seed, stream, step, index, draw, n):
    """A draw in 0..n-1 keyed by (seed, stream, step, index, draw)."""
    key = [(seed & M32) ^ ((stream * 0x85EBCA6B) & M32), seed >> 32]
    u = philox([index & M32, index >> 32, draw, step & M32], key)[0]
    return (u * n) >> 32


def shuffle(ids, seed, step, rnd):
    ids = list(ids)
    for i in range(len(ids) - 1):
        j = i + below(seed, 1, step, i, rnd, len(ids) - i)
        ids[i], ids[j] = ids[j], ids[i]
    return ids


def batch(labels, R, B, k, seed, step):
    classes = sorted(set(labels))
    C = len(classes)
    g = B // k
    G = R * g
    perms = [shuffle(classes, seed, step, p) for p in range(-(-G // C))]
    for r in range(R):
        b, e = r * g, r * g + g
        p = b // C
        if (e - 1) // C == p:
            continue
        tail = set(perms[p][b % C:])
        head = perms[p + 1]
        n_head = e - (p + 1) * C
        cur = n_head
        for j in range(n_head):
            if head[j] in tail:
                while head[cur] in tail:
                    cur += 1
                head[j], head[cur] = head[cur], head[j]
                cur += 1
    seq = [c for perm in perms for c in perm][:G]
    rows = []
    seen = {}
    for c in seq:
        members = [r for r, l in enumerate(labels) if l == c]
        n = len(members)
        pos = list(range(n))
        for i in range(n - 1):
            jj = i + below(seed, 2, step, c, i, n - i)
            pos[i], pos[jj] = pos[jj], pos[i]
        j = seen.get(c, 0)
        seen[c] = j + 1
        rows += [members[pos[(j * k + t) % n]] for t in range(k)]
    return rows


def main(cases_path):
    for line in open(cases_path):
        f = line.split()
        R, B, k, seed, step = map(int, f[:5])
        labels = list(map(int, f[5:]))
        print(" ".join(map(str, batch(labels, R, B, k, seed, step))))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
