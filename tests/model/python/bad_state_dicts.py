"""Three resnet18 state dicts with one defect each, for the loader's error messages.

Usage: bad_state_dicts.py OUT_DIR
Writes, from torchvision.models.resnet18(weights=None) (random weights, nothing downloaded), as
torch.save(dict) files:
  OUT_DIR/bad_missing.pt  without layer1.0.conv1.weight
  OUT_DIR/bad_extra.pt    with an extra layer5.0.conv1.weight
  OUT_DIR/bad_shape.pt    conv1.weight of shape [64, 3, 3, 3] instead of [64, 3, 7, 7]
All three keep torchvision's fc.* (the loader must ignore those). Called by
tests/model/pretrained_test.cpp.
"""
import os
import sys

import torch
import torchvision


def main(out):
    sd = dict(torchvision.models.resnet18(weights=None).state_dict())
    bad = dict(sd)
    del bad["layer1.0.conv1.weight"]
    torch.save(bad, os.path.join(out, "bad_missing.pt"))
    bad = dict(sd)
    bad["layer5.0.conv1.weight"] = torch.zeros(3)
    torch.save(bad, os.path.join(out, "bad_extra.pt"))
    bad = dict(sd)
    bad["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(bad, os.path.join(out, "bad_shape.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
