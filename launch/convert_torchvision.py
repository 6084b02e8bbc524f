#!/usr/bin/env python3
"""Convert torchvision ImageNet ResNet weights into dml's pretrained-backbone file.

Usage:
  python3 launch/convert_torchvision.py --model resnet50_v1 --output ~/.cache/dml/pretrained/resnet50_v1.pt
  python3 launch/convert_torchvision.py --model resnet50_v1 --output PATH --weights-file resnet50-0676ba61.pth

The output is torch.save(dict(state_dict), PATH): a plain dict name -> tensor, which LibTorch's
torch::pickle_load reads (a saved OrderedDict is not readable there). Names are torchvision's; dml's
resnet*_v1 backbones use the same names, and the loader ignores fc.*.

Weights come from --weights-file (a .pth state dict, or a pickled torchvision model) or else from
the torchvision/torch-hub cache ($TORCH_HOME/hub/checkpoints). This script never downloads: fetch
the file yourself on a machine with network access (the URL is printed when it is missing).
The *_v2 (pre-activation) models have no torchvision source.
"""
import argparse
import os
import sys

TORCHVISION_NAMES = {
    "resnet18_v1": ("resnet18", "ResNet18_Weights"),
    "resnet34_v1": ("resnet34", "ResNet34_Weights"),
    "resnet50_v1": ("resnet50", "ResNet50_Weights"),
    "resnet101_v1": ("resnet101", "ResNet101_Weights"),
    "resnet152_v1": ("resnet152", "ResNet152_Weights"),
}


def fail(message):
    print("convert_torchvision.py: " + message, file=sys.stderr)
    sys.exit(2)


def cached_weights(weights_enum_name):
    """Path of the IMAGENET1K_V1 checkpoint in the torch-hub cache, and its URL."""
    import torch
    import torchvision.models as models
    weights = getattr(models, weights_enum_name).IMAGENET1K_V1
    url = weights.url
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    return path, url


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="dml model name, e.g. resnet50_v1")
    parser.add_argument("--output", required=True, help="file to write (directories are created)")
    parser.add_argument("--weights-file", default="", help="local torchvision .pth state dict")
    args = parser.parse_args()

    if args.model.endswith("_v2"):
        fail(f"{args.model} is the pre-activation ResNet of MXNet Gluon; torchvision has no such weights. "
             f"Use one of {', '.join(TORCHVISION_NAMES)} with --use-pretrained, or write a dict "
             f"name -> tensor with the backbone's own names yourself.")
    if args.model not in TORCHVISION_NAMES:
        fail(f"--model {args.model}: no torchvision source; choose one of {', '.join(TORCHVISION_NAMES)}")

    try:
        import torch
        import torchvision.models as models
    except ImportError as e:
        fail(f"needs PyTorch and torchvision ({e}); on Debian: apt install python3-torchvision "
             f"and run with /usr/bin/python3")

    builder_name, weights_enum_name = TORCHVISION_NAMES[args.model]
    source = args.weights_file
    if not source:
        source, url = cached_weights(weights_enum_name)
        if not os.path.exists(source):
            fail(f"no --weights-file given and {source} does not exist. Download {url} on a machine "
                 f"with network access, then pass it with --weights-file (nothing is downloaded here).")
    if not os.path.exists(source):
        fail(f"--weights-file {source}: no such file")

    loaded = torch.load(source, map_location="cpu")
    if isinstance(loaded, torch.nn.Module):
        loaded = loaded.state_dict()
    if not isinstance(loaded, dict):
        fail(f"--weights-file {source}: holds a {type(loaded).__name__}, expected a state dict")

    # Loading into the torchvision model checks every name and shape before we write anything.
    model = getattr(models, builder_name)(weights=None)
    model.load_state_dict(loaded, strict=True)
    state = {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}

    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.output + ".tmp"
    torch.save(state, tmp)  # a plain dict: torch::pickle_load cannot read an OrderedDict
    os.replace(tmp, args.output)
    print(f"wrote {len(state)} tensors of {args.model} from {source} to {args.output}")


if __name__ == "__main__":
    main()
