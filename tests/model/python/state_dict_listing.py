"""Names and shapes of the parameters and buffers of the reference ResNet backbones.

Usage: state_dict_listing.py OUT_DIR MODEL [MODEL ...]
  MODEL is a dml model name, resnet{18,34,50,101,152}_v{1,2}, optionally followed by _small
  for the small-input stem (e.g. resnet152_v1, resnet18_v2_small).

The references are built here with random weights (nothing is downloaded):
  *_v1  torchvision.models.resnetNN() without its classifier (fc.*). Its small-input variant has
        conv1 replaced by a 3x3 stride-1 conv and the max-pool by an identity, which is what dml's
        small stem is (bn1 and its ReLU stay).
  *_v2  resnet_v2_model.ResNetV2, the independent pre-activation ResNet next to this file.
For each MODEL it writes OUT_DIR/MODEL.txt, one line per tensor in registration order:
  count N                      total number of parameter elements
  param NAME [d0, d1, ...]     each parameter (named_parameters order)
  buffer NAME [d0, ...]        each buffer (named_buffers order; [] for a scalar)
Called by tests/model/resnet_parameters_test.cpp, which compares dml's backbones line by line.
"""
import os
import sys

import torch
import torchvision

from resnet_v2_model import ResNetV2


def torchvision_backbone(depth, small):
    model = getattr(torchvision.models, "resnet%d" % depth)(weights=None)
    if small:
        # Assigning an existing attribute keeps its place in the registration order.
        model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    return model


def build(name):
    parts = name.split("_")  # resnetNN, vK[, small]
    depth = int(parts[0][len("resnet"):])
    small = parts[2:] == ["small"]
    if parts[1] == "v1":
        return torchvision_backbone(depth, small)
    if parts[1] == "v2":
        return ResNetV2(depth, small)
    raise SystemExit("state_dict_listing.py: unknown model " + name)


def shape(tensor):
    return "[" + ", ".join(str(d) for d in tensor.shape) + "]"


def listing(model):
    # dml's backbones have no classifier; the loader ignores torchvision's fc.* the same way.
    params = [(n, p) for n, p in model.named_parameters() if not n.startswith("fc.")]
    buffers = [(n, b) for n, b in model.named_buffers() if not n.startswith("fc.")]
    lines = ["count %d" % sum(p.numel() for _, p in params)]
    lines += ["param %s %s" % (n, shape(p)) for n, p in params]
    lines += ["buffer %s %s" % (n, shape(b)) for n, b in buffers]
    return lines


def main(out, names):
    for name in names:
        with open(os.path.join(out, name + ".txt"), "w") as f:
            f.write("\n".join(listing(build(name))) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
