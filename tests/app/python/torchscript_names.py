"""Checks that launch/dml_models.py builds every dml model with dml's parameter and buffer names.

Usage: torchscript_names.py LISTING
  LISTING  lines "MODEL STEM EMBED_DIM KIND NAME DIM0xDIM1x..." written by
           tests/app/torchscript_export_test.cpp from dml's C++ EmbeddingNet: STEM is 0 or 1
           (small_input_stem), KIND is "param" or "buffer", one line per tensor in dml's
           named_parameters() then named_buffers() order; a scalar has the shape "-".

For each (MODEL, STEM, EMBED_DIM) it builds dml_models.build_embedding_net and compares: the same
parameter names in the same order, the same buffer names in the same order, the same shapes. This is
what export_torchscript.py's strict load needs, checked for every model of dml's factory without
writing checkpoints. Prints one line per model and "ok"; exits 1 listing the differences.
"""
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "launch"))

import dml_models  # noqa: E402  (launch/dml_models.py)


def shape_text(tensor):
    return "x".join(str(d) for d in tensor.shape) if tensor.dim() > 0 else "-"


def main(listing):
    cases = OrderedDict()
    with open(listing) as f:
        for line in f:
            model, stem, embed_dim, kind, name, shape = line.split()
            cases.setdefault((model, stem == "1", int(embed_dim)), {"param": [], "buffer": []})[kind].append((name, shape))
    problems = []
    for (model, stem, embed_dim), expected in cases.items():
        net = dml_models.build_embedding_net(model, embed_dim, 3, stem)
        found = {
            "param": [(n, shape_text(t)) for n, t in net.named_parameters()],
            "buffer": [(n, shape_text(t)) for n, t in net.named_buffers()],
        }
        case_problems = []
        for kind in ("param", "buffer"):
            if found[kind] != expected[kind]:
                want, got = dict(expected[kind]), dict(found[kind])
                missing = [n for n in want if n not in got]
                extra = [n for n in got if n not in want]
                shapes = [f"{n} {want[n]} vs {got[n]}" for n in want if n in got and want[n] != got[n]]
                order = not missing and not extra and not shapes
                case_problems.append(f"{kind}s: missing {missing[:5]} extra {extra[:5]} shapes {shapes[:5]}"
                                     + (" (same names, other order)" if order else ""))
        status = "ok" if not case_problems else "; ".join(case_problems)
        print(f"{model} small_input_stem={int(stem)}: {len(expected['param'])} params, "
              f"{len(expected['buffer'])} buffers: {status}")
        if case_problems:
            problems.append(model)
    if problems:
        print("FAIL: names or shapes differ for " + ", ".join(problems))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1])
