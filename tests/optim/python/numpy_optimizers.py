#!/usr/bin/env python3
"""Independent NumPy implementation of dml's optimiser update formulas (MXNet semantics).

Used by tests/optim (optim_scenario.h, numpy_reference): the C++ test writes the scenario as JSON,
this program replays it and the test compares its final parameters with dml::Optimizer's.

Usage: numpy_optimizers.py SPEC_JSON OUT_TXT

SPEC_JSON  {"kind": "adam"|"adamw"|"sgd"|"rmsprop", "dtype": "float64"|"float32",
            "wd", "rescale", "b1", "b2", "eps", "momentum", "gamma", "rms_eps": numbers,
            "lr_mult": [one per parameter], "init": [flat initial values per parameter],
            "steps": [{"lr": number, "grads": [flat gradient per parameter, or null = no gradient]}]}
OUT_TXT    written: one line per parameter, its final values (%.17g, space separated).

Every step of a parameter with a gradient: g' = rescale * g (+ wd * w, except for adamw), then
  adam/adamw  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
              w -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)   (adamw also w -= lr * wd * w)
  sgd         momentum 0: w -= lr g';  else  m = momentum m - lr g';  w += m
  rmsprop     n = (1-gamma) g'^2 + gamma n;  w -= lr g' / sqrt(n + rms_eps)
with lr = step lr * lr_mult, t = that parameter's own update count, arithmetic in `dtype`.
"""
import json
import sys

import numpy as np


def main(spec_path, out_path):
    spec = json.load(open(spec_path))
    dt = np.float64 if spec["dtype"] == "float64" else np.float32
    ws = [np.array(p, dtype=dt) for p in spec["init"]]
    st = [dict(t=0, a=np.zeros_like(w), b=np.zeros_like(w)) for w in ws]
    kind, wd, r = spec["kind"], spec["wd"], spec["rescale"]
    for step in spec["steps"]:
        for i, g in enumerate(step["grads"]):
            if g is None:
                continue
            g = np.array(g, dtype=dt)
            w, s = ws[i], st[i]
            lr = step["lr"] * spec["lr_mult"][i]
            gp = r * g if kind == "adamw" else r * g + wd * w
            s["t"] += 1
            if kind in ("adam", "adamw"):
                b1, b2, eps = spec["b1"], spec["b2"], spec["eps"]
                s["a"] = b1 * s["a"] + (1 - b1) * gp
                s["b"] = b2 * s["b"] + (1 - b2) * gp * gp
                lr_t = lr * (1 - b2 ** s["t"]) ** 0.5 / (1 - b1 ** s["t"])
                upd = lr_t * s["a"] / (np.sqrt(s["b"]) + eps)
                ws[i] = w - upd if kind == "adam" else w - upd - lr * wd * w
            elif kind == "sgd":
                mu = spec["momentum"]
                if mu == 0:
                    ws[i] = w - lr * gp
                else:
                    s["a"] = mu * s["a"] - lr * gp
                    ws[i] = w + s["a"]
            elif kind == "rmsprop":
                gam, eps = spec["gamma"], spec["rms_eps"]
                s["a"] = (1 - gam) * gp * gp + gam * s["a"]
                ws[i] = w - lr * gp / np.sqrt(s["a"] + eps)
            assert ws[i].dtype == dt
    with open(out_path, "w") as f:
        for w in ws:
            f.write(" ".join("%.17g" % x for x in w.astype(np.float64).ravel()) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
