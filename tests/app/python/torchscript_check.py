"""Runs an exported TorchScript embedding network and compares it with dml's C++ forward.

Usage: torchscript_check.py MODULE IO TOLERANCE
  MODULE     the file launch/export_torchscript.py wrote
  IO         torch::pickle_save of a dict {"input": float32 [B, 3, H, W], "output": float32 [B, D]},
             dml's EmbeddingNet eval-mode forward of "input" (written by tests/app/torchscript_export_test.cpp)
  TOLERANCE  the largest allowed absolute difference, e.g. 1e-5

Only torch.jit.load is used, no dml code: this is what a user of the exported file does. Checks that
the module is in eval mode, that its output is float32 [B, D] like dml's, within TOLERANCE of it
everywhere, that every row has unit length (within TOLERANCE), and that a second call gives the
same result (eval mode: no BatchNorm statistics move). Prints "max_abs_diff X" and "max_norm_error X",
then "ok"; exits 1 with a message on the first failed check.
"""
import sys

import torch


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def main(module_path, io_path, tolerance):
    module = torch.jit.load(module_path, map_location="cpu")
    if module.training:
        fail("the exported module is in training mode")
    io = torch.load(io_path)
    x, expected = io["input"], io["output"]
    with torch.no_grad():
        y = module(x)
        again = module(x)
    if y.dtype != torch.float32:
        fail(f"output dtype is {y.dtype}, expected float32")
    if tuple(y.shape) != tuple(expected.shape):
        fail(f"output shape is {tuple(y.shape)}, dml's is {tuple(expected.shape)}")
    if not torch.isfinite(y).all():
        fail("the output has non-finite values")
    diff = (y - expected).abs().max().item()
    norm_error = (y.norm(dim=1) - 1).abs().max().item()
    print(f"max_abs_diff {diff:.3e}")
    print(f"max_norm_error {norm_error:.3e}")
    if diff > tolerance:
        fail(f"max |torchscript - dml| = {diff:.3e} > {tolerance:.1e}")
    if norm_error > tolerance:
        fail(f"rows are not unit length: max |norm - 1| = {norm_error:.3e}")
    if not torch.equal(y, again):
        fail("a second call gives another result: the module is not deterministic in eval mode")
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
