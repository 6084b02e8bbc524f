"""Random ResNetV2 weights, an input and the reference features, for dml's forward cross-check.

Usage: resnet_v2_reference.py OUT_DIR CASE [CASE ...]
  CASE is DEPTH_full or DEPTH_small (e.g. 18_full, 50_small): the ImageNet stem on a
  [2, 3, 64, 64] input, or the small-input stem on a [2, 3, 32, 32] input.

For each case it builds resnet_v2_model.ResNetV2 (seed 99, drawn in the order of the arguments),
sets every BatchNorm's affine parameters and running statistics to random values (so that eval
mode is not the identity), and writes, in eval mode:
  OUT_DIR/CASE.pt     dict(state_dict): the weights, with dml's names (loadable by name)
  OUT_DIR/CASE_io.pt  {"input": x, "features": pooled features [2, C]}
Prints "ok". Called by tests/model/resnet_v2_test.cpp.
"""
import os
import sys

import torch
from torch import nn

from resnet_v2_model import ResNetV2


def perturb_batch_norms(model):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                if module.affine:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 2.0)


def main(out, cases):
    torch.manual_seed(99)
    for case in cases:
        depth, stem = case.split("_")
        small = stem == "small"
        model = ResNetV2(int(depth), small)
        perturb_batch_norms(model)
        model.eval()
        size = 32 if small else 64
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            features = model(x)
        torch.save(dict(model.state_dict()), os.path.join(out, case + ".pt"))
        torch.save({"input": x, "features": features}, os.path.join(out, case + "_io.pt"))
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
