#!/usr/bin/env python3
"""Export a dml checkpoint's embedding network as a TorchScript module for plain PyTorch.

Usage:
  python3 launch/export_torchscript.py --checkpoint PREFIX-best.pt --out model.ts
  python3 launch/export_torchscript.py --checkpoint PREFIX-last.pt --out model.ts
      [--model NAME] [--embed-dim D] [--small-input-stem | --no-small-input-stem]

Reads a <prefix>-best.pt or <prefix>-last.pt written by dist_train (checkpoint format_version 1:
a LibTorch archive, which torch.jit.load opens; its "model" submodule holds the network's
parameters and buffers, its meta/model, meta/embed_dim and meta/options attributes say how it was
built). The flags are optional: they are taken from the checkpoint, and a flag that disagrees with
it is an error. The network is rebuilt in PyTorch with dml's names (launch/dml_models.py), loaded
with strict=True, put in eval mode, compiled with torch.jit.script and written to --out atomically
(a temporary file in the same directory, then a rename; the directory must exist).

The module maps float32 images [B, 3, H, W], normalised as dml does ((pixel / 255 - mean) / std,
mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225), to unit-length float32 embeddings [B, D], as
dml's EmbeddingNet in eval mode. It also carries the attributes model_name, embed_dim,
small_input_stem, crop_size (the training --crop-size, 0 if unknown), mean and std. Load it with
torch.jit.load(path) (no dml code needed), on any device with .to(device).

Needs PyTorch only (Debian: /usr/bin/python3 with python3-torch). Errors print one line and exit 2.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PROG = "export_torchscript.py"
FORMAT_VERSION = 1  # dml::kCheckpointFormatVersion


class ExportError(Exception):
    pass


def fail(message):
    # One line: the first line of whatever an underlying library said.
    print(PROG + ": " + " ".join(str(message).split("\n")[0].split()), file=sys.stderr)
    sys.exit(2)


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def parse_options_text(text):
    """describe_options' "key = value" lines -> dict (src/cli/parse_options.cpp)."""
    options = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            options[key.strip()] = value.strip()
        elif line.rstrip().endswith(" ="):  # an empty value whose trailing space was stripped
            options[line.rstrip()[:-2].strip()] = ""
    return options


def parse_switch(value, key, path):
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise ExportError(f"{path}: meta/options has '{key} = {value}'; expected 0 or 1; the checkpoint is damaged")


def read_checkpoint(path):
    """The checkpoint's model state dict and what it says about the model."""
    import torch

    if not os.path.isfile(path):
        raise ExportError(f"--checkpoint {path}: no such file; pass the <prefix>-best.pt or -last.pt of a dist_train run")
    try:
        archive = torch.jit.load(path, map_location="cpu")
    except Exception as e:  # torch raises RuntimeError, ValueError, ... for files of other kinds
        raise ExportError(f"{path}: not a dml checkpoint (cannot be opened as a LibTorch archive: {first_line(e)})")

    def attribute(name):
        try:
            return getattr(archive, name)
        except AttributeError:
            raise ExportError(f"{path}: field '{name}' is missing; the file is not a dml checkpoint")

    version = attribute("format_version")
    if not isinstance(version, torch.Tensor) or version.numel() != 1:
        raise ExportError(f"{path}: field 'format_version' is not a number; the file is not a dml checkpoint")
    version = int(version.item())
    if version != FORMAT_VERSION:
        raise ExportError(f"{path}: format_version is {version}, this tool reads {FORMAT_VERSION}; "
                          f"use the export tool of the dml version that wrote it")
    model = attribute("meta/model")
    embed_dim = attribute("meta/embed_dim")
    options_text = attribute("meta/options")
    if not isinstance(model, str) or not isinstance(embed_dim, torch.Tensor) or not isinstance(options_text, str):
        raise ExportError(f"{path}: meta/model, meta/embed_dim or meta/options has the wrong type; "
                          f"the file is not a dml checkpoint")
    try:
        weights = archive.model
    except AttributeError:
        raise ExportError(f"{path}: field 'model' is missing; the file is not a dml checkpoint")
    state = {name: tensor.detach().clone() for name, tensor in weights.state_dict().items()}
    options = parse_options_text(options_text)
    stem = options.get("small-input-stem")
    crop = options.get("crop-size", "0")
    return {
        "model": model,
        "embed_dim": int(embed_dim.item()),
        "small_input_stem": None if stem is None else parse_switch(stem, "small-input-stem", path),
        "crop_size": int(crop) if crop.isdigit() else 0,
        "state": state,
    }


def resolve(args, ckpt, path):
    """Model name, embed dim and stem: the checkpoint's, which the flags (when given) must equal."""
    import dml_models

    names = dml_models.model_names()
    if ckpt["model"] not in names:
        raise ExportError(f"{path}: meta/model is '{ckpt['model']}', which this tool does not know; "
                          f"valid names are: {', '.join(names)}")
    if args.model is not None and args.model not in names:
        raise ExportError(f"--model {args.model}: unknown model name; valid names are: {', '.join(names)}")

    def agree(flag, given, found):
        if given is not None and given != found:
            raise ExportError(f"{flag} {given} disagrees with the checkpoint {path}, which holds {found}; "
                              f"drop the flag or pass the checkpoint's value")

    agree("--model", args.model, ckpt["model"])
    agree("--embed-dim", args.embed_dim, ckpt["embed_dim"])
    state = ckpt["state"]
    stem = ckpt["small_input_stem"]
    resnet = ckpt["model"].startswith("resnet")
    conv1 = state.get("backbone.conv1.weight")
    if resnet and conv1 is not None and conv1.dim() == 4:
        # The stem is visible in the weights too: 3x3 small, 7x7 ImageNet.
        from_weights = conv1.shape[-1] == 3
        if stem is not None and stem != from_weights:
            raise ExportError(f"{path}: meta/options says small-input-stem = {int(stem)} but backbone.conv1 is "
                              f"{conv1.shape[-2]}x{conv1.shape[-1]}; the checkpoint is damaged")
        stem = from_weights
    if args.small_input_stem is not None:
        if stem is None:
            stem = args.small_input_stem
        elif args.small_input_stem != stem:
            given = "--small-input-stem" if args.small_input_stem else "--no-small-input-stem"
            raise ExportError(f"{given} disagrees with the checkpoint {path}, which was trained with "
                              f"small-input-stem = {int(stem)}; drop the flag")
    if stem is None:
        stem = False  # small convnets without an options record: the stem is ignored anyway
    in_channels = int(conv1.shape[1]) if conv1 is not None and conv1.dim() == 4 else 3
    return ckpt["model"], ckpt["embed_dim"], stem, in_channels


def build(model, embed_dim, stem, in_channels, crop_size, state, path):
    import dml_models

    net = dml_models.build_embedding_net(model, embed_dim, in_channels, stem, crop_size)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        missing = sorted(set(net.state_dict()) - set(state))
        unexpected = sorted(set(state) - set(net.state_dict()))
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            detail.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
        if not detail:
            detail.append(first_line(e))
        raise ExportError(f"{path}: the weights do not fit {model} (embed-dim {embed_dim}, small-input-stem "
                          f"{int(stem)}): {'; '.join(detail)}")
    return net.eval()


def check_destination(out, checkpoint):
    """--out must be a new or existing file (not the checkpoint) in an existing directory."""
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise ExportError(f"--out {out}: directory {directory} does not exist; create it first")
    if os.path.isdir(out):
        raise ExportError(f"--out {out}: is a directory; give a file name such as model.ts")
    if os.path.exists(out) and os.path.samefile(out, checkpoint):
        raise ExportError(f"--out {out}: is the checkpoint itself; write the TorchScript module to another file")
    return directory


def save_atomically(module, out, checkpoint):
    """torch.jit.save to a temporary file next to `out`, fsync, rename: readers never see a partial file."""
    import torch

    directory = check_destination(out, checkpoint)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        torch.jit.save(module, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="<prefix>-best.pt or <prefix>-last.pt of dist_train")
    parser.add_argument("--out", required=True, help="TorchScript file to write, e.g. model.ts (its directory must exist)")
    parser.add_argument("--model", default=None, help="dml model name; default: the checkpoint's (must agree)")
    parser.add_argument("--embed-dim", type=int, default=None, help="embedding size; default: the checkpoint's (must agree)")
    stem = parser.add_mutually_exclusive_group()
    stem.add_argument("--small-input-stem", dest="small_input_stem", action="store_const", const=True, default=None,
                      help="the network has the small-input stem; default: as the checkpoint (must agree)")
    stem.add_argument("--no-small-input-stem", dest="small_input_stem", action="store_const", const=False,
                      help="the network has the ImageNet stem; default: as the checkpoint (must agree)")
    args = parser.parse_args()

    try:
        import torch
    except ImportError as e:
        fail(f"needs PyTorch ({e}); on Debian: apt install python3-torch and run with /usr/bin/python3")

    try:
        ckpt = read_checkpoint(args.checkpoint)
        model, embed_dim, stem, in_channels = resolve(args, ckpt, args.checkpoint)
        check_destination(args.out, args.checkpoint)  # before the (for big models, slow) compilation
        net = build(model, embed_dim, stem, in_channels, ckpt["crop_size"], ckpt["state"], args.checkpoint)
        scripted = torch.jit.script(net)
        try:
            save_atomically(scripted, args.out, args.checkpoint)
        except (OSError, RuntimeError) as e:
            raise ExportError(f"--out {args.out}: cannot write it ({first_line(e)})")
    except ExportError as e:
        fail(e)
    print(f"wrote {args.out}: {model}, embed-dim {embed_dim}, small-input-stem {int(stem)}, "
          f"crop-size {ckpt['crop_size'] or 'unknown'}, from {args.checkpoint}")


if __name__ == "__main__":
    main()
