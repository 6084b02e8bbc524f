"""A torchvision ResNet with random weights and its features, for dml's pretrained-loading check.

Usage: torchvision_features.py OUT_DIR MODEL [--converter PATH]
  MODEL is a torchvision builder name: resnet18, resnet34, resnet50, resnet101 or resnet152.

Builds torchvision.models.MODEL(weights=None) (seed 1234; nothing is downloaded), sets every
BatchNorm's weight, bias, running statistics and num_batches_tracked (17) to non-default values
so that a loader that skips any of them is caught, and writes, in eval mode:
  OUT_DIR/MODEL_io.pt  {"input": x [2, 3, 64, 64], "features": pooled features before fc}
  OUT_DIR/MODEL.pt     the weights as dict(state_dict), which LibTorch's pickle_load reads.
With --converter PATH (launch/convert_torchvision.py) it instead saves torchvision's own format
(an OrderedDict) to OUT_DIR/MODEL_tv.pth and lets the converter write OUT_DIR/MODEL.pt, so the
converter is tested too. Called by tests/model/pretrained_test.cpp.
"""
import argparse
import os
import subprocess
import sys

import torch
import torchvision


def perturbed(builder):
    model = builder(weights=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(17)
    return model.eval()


def save_features(model, path):
    x = torch.randn(2, 3, 64, 64)
    fc = model.fc
    model.fc = torch.nn.Identity()  # dml's backbone ends at the pooled features
    with torch.no_grad():
        features = model(x)
    model.fc = fc
    torch.save({"input": x, "features": features}, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("model")
    parser.add_argument("--converter", help="launch/convert_torchvision.py, to convert with")
    args = parser.parse_args()
    torch.manual_seed(1234)
    model = perturbed(getattr(torchvision.models, args.model))
    output = os.path.join(args.out_dir, args.model + ".pt")
    if args.converter:
        weights = os.path.join(args.out_dir, args.model + "_tv.pth")
        torch.save(model.state_dict(), weights)
    else:
        torch.save(dict(model.state_dict()), output)
    save_features(model, os.path.join(args.out_dir, args.model + "_io.pt"))
    if args.converter:
        subprocess.run([sys.executable, args.converter, "--model", args.model + "_v1", "--output", output,
                        "--weights-file", weights], check=True)


if __name__ == "__main__":
    main()
