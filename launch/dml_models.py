"""dml's embedding networks in PyTorch, with the parameter and buffer names of dml's C++ EmbeddingNet.

A state dict of dml's C++ model (what a <prefix>-best.pt or -last.pt holds under "model") loads into
build_embedding_net(...) with strict=True, and in eval mode the two compute the same embeddings
(up to float summation order). Written from src/model/*.cpp:

  EmbeddingNet      backbone.* -> mean over H, W (float32) -> head (Linear, head.weight, head.bias)
                    -> x / sqrt(sum x^2 + 1e-10)
  resnet*_v1        torchvision's ResNet (v1.5), torchvision's names: conv1, bn1, layerN.i.{conv1, bn1,
                    conv2, bn2[, conv3, bn3]}, layerN.i.downsample.{0,1}; no fc
  resnet*_v2        MXNet Gluon's pre-activation ResNetV2, dml's names: input_bn (no affine), conv1,
                    bn1 (not with the small stem), layerN.i.{bn1, conv1, bn2, conv2[, bn3, conv3]},
                    layerN.i.downsample (a bare conv), bn_final
  small_convnet     conv1, conv2, conv3 (3x3, strides 1/2/2, no bias) and bn1..bn3
  small_convnet_nobn conv1..conv3 with bias, no BN
  small input stem  (ResNets) conv1 3x3 stride 1 and no max-pool; v2 then has no bn1

Every module here is torch.jit.script-able. Used by launch/export_torchscript.py; imports only torch.
"""
from typing import List, Optional

import torch
from torch import nn
import torch.nn.functional as F

DEPTHS = (18, 34, 50, 101, 152)

# Blocks per stage and whether the blocks are bottlenecks (dml::resnet_spec).
RESNET_SPECS = {
    18: (False, [2, 2, 2, 2]),
    34: (False, [3, 4, 6, 3]),
    50: (True, [3, 4, 6, 3]),
    101: (True, [3, 4, 23, 3]),
    152: (True, [3, 8, 36, 3]),
}
BOTTLENECK_EXPANSION = 4
STEM_CHANNELS = 64


def model_names() -> List[str]:
    """The names of dml's model factory (dml::model_names), in its order."""
    names = ["resnet%d%s" % (depth, family) for family in ("_v1", "_v2") for depth in DEPTHS]
    return names + ["small_convnet", "small_convnet_nobn"]


def conv_no_bias(cin: int, cout: int, kernel: int, stride: int, padding: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)


def batch_norm(channels: int, affine: bool = True) -> nn.BatchNorm2d:
    # eps 1e-5, momentum 0.1 as dml (src/model/resnet_layers.cpp, small_convnet.cpp).
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1, affine=affine)


def needs_projection(cin: int, cout: int, stride: int) -> bool:
    return stride != 1 or cin != cout


class BasicBlockV1(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + (downsample(x) or x))."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = conv_no_bias(cin, cout, 3, stride, 1)
        self.bn1 = batch_norm(cout)
        self.conv2 = conv_no_bias(cout, cout, 3, 1, 1)
        self.bn2 = batch_norm(cout)
        self.downsample: Optional[nn.Module] = None
        if needs_projection(cin, cout, stride):
            self.downsample = nn.Sequential(conv_no_bias(cin, cout, 1, stride, 0), batch_norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(x)
        return F.relu(out + shortcut)


class BottleneckV1(nn.Module):
    """v1.5 bottleneck, width cout / 4, the stride on the 3x3 conv."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        width = cout // BOTTLENECK_EXPANSION
        self.conv1 = conv_no_bias(cin, width, 1, 1, 0)
        self.bn1 = batch_norm(width)
        self.conv2 = conv_no_bias(width, width, 3, stride, 1)
        self.bn2 = batch_norm(width)
        self.conv3 = conv_no_bias(width, cout, 1, 1, 0)
        self.bn3 = batch_norm(cout)
        self.downsample: Optional[nn.Module] = None
        if needs_projection(cin, cout, stride):
            self.downsample = nn.Sequential(conv_no_bias(cin, cout, 1, stride, 0), batch_norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(x)
        return F.relu(out + shortcut)


class BasicBlockV2(nn.Module):
    """a = relu(bn1(x)); conv2(relu(bn2(conv1(a)))) + (downsample(a) or x)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = batch_norm(cin)
        self.conv1 = conv_no_bias(cin, cout, 3, stride, 1)
        self.bn2 = batch_norm(cout)
        self.conv2 = conv_no_bias(cout, cout, 3, 1, 1)
        self.downsample: Optional[nn.Module] = None
        if needs_projection(cin, cout, stride):
            self.downsample = conv_no_bias(cin, cout, 1, stride, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class BottleneckV2(nn.Module):
    """a = relu(bn1(x)); conv1 1x1, bn2, relu, conv2 3x3/stride, bn3, relu, conv3 1x1; + (downsample(a) or x)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        width = cout // BOTTLENECK_EXPANSION
        self.bn1 = batch_norm(cin)
        self.conv1 = conv_no_bias(cin, width, 1, 1, 0)
        self.bn2 = batch_norm(width)
        self.conv2 = conv_no_bias(width, width, 3, stride, 1)
        self.bn3 = batch_norm(width)
        self.conv3 = conv_no_bias(width, cout, 1, 1, 0)
        self.downsample: Optional[nn.Module] = None
        if needs_projection(cin, cout, stride):
            self.downsample = conv_no_bias(cin, cout, 1, stride, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + shortcut


class ResNet(nn.Module):
    """[input_bn] conv1 [bn1, relu] [max-pool 3/2 pad 1] layer1..layer4 [bn_final, relu] -> feature map."""

    def __init__(self, version: int, depth: int, in_channels: int = 3, small_input_stem: bool = False):
        super().__init__()
        if version not in (1, 2):
            raise ValueError("ResNet version must be 1 or 2, got %r" % (version,))
        if depth not in RESNET_SPECS:
            raise ValueError("ResNet depth %r is not supported; use 18, 34, 50, 101 or 152" % (depth,))
        bottleneck, blocks = RESNET_SPECS[depth]
        if version == 1:
            block = BottleneckV1 if bottleneck else BasicBlockV1
        else:
            block = BottleneckV2 if bottleneck else BasicBlockV2
        self.small_input_stem = small_input_stem
        # Registration order as dml's (the state-dict order): input_bn, conv1, bn1, layer1..4, bn_final.
        self.input_bn: Optional[nn.Module] = batch_norm(in_channels, affine=False) if version == 2 else None
        if small_input_stem:
            self.conv1 = conv_no_bias(in_channels, STEM_CHANNELS, 3, 1, 1)
        else:
            self.conv1 = conv_no_bias(in_channels, STEM_CHANNELS, 7, 2, 3)
        # v2's thumbnail stem has no bn1: its first block pre-activates the stem's output.
        self.bn1: Optional[nn.Module] = None
        if version == 1 or not small_input_stem:
            self.bn1 = batch_norm(STEM_CHANNELS)
        channels = STEM_CHANNELS
        stages = []
        for s in range(4):
            out = (STEM_CHANNELS << s) * (BOTTLENECK_EXPANSION if bottleneck else 1)
            stride = 1 if s == 0 else 2
            stage = [block(channels, out, stride)] + [block(out, out, 1) for _ in range(1, blocks[s])]
            stages.append(nn.Sequential(*stage))
            channels = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn_final: Optional[nn.Module] = batch_norm(channels) if version == 2 else None
        self.feature_dim = channels
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_bn is not None:
            x = self.input_bn(x)
        x = self.conv1(x)
        if self.bn1 is not None:
            x = F.relu(self.bn1(x))
        if not self.small_input_stem:
            x = F.max_pool2d(x, 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.bn_final is not None:
            x = F.relu(self.bn_final(x))
        return x


class SmallConvNet(nn.Module):
    """Three conv3x3 blocks, 32/64/128 channels, strides 1/2/2: conv-BN-ReLU, or conv(bias)-ReLU without BN."""

    def __init__(self, in_channels: int = 3, use_batch_norm: bool = True):
        super().__init__()
        bias = not use_batch_norm
        self.conv1 = nn.Conv2d(in_channels, 32, 3, stride=1, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=bias)
        self.conv3 = nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=bias)
        self.bn1: Optional[nn.Module] = batch_norm(32) if use_batch_norm else None
        self.bn2: Optional[nn.Module] = batch_norm(64) if use_batch_norm else None
        self.bn3: Optional[nn.Module] = batch_norm(128) if use_batch_norm else None
        self.feature_dim = 128
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.bn1 is not None:
            x = self.bn1(x)
        x = self.conv2(F.relu(x))
        if self.bn2 is not None:
            x = self.bn2(x)
        x = self.conv3(F.relu(x))
        if self.bn3 is not None:
            x = self.bn3(x)
        return F.relu(x)


def build_backbone(name: str, in_channels: int = 3, small_input_stem: bool = False) -> nn.Module:
    """dml::make_backbone: small_input_stem is ignored by the small convnets."""
    if name == "small_convnet":
        return SmallConvNet(in_channels, use_batch_norm=True)
    if name == "small_convnet_nobn":
        return SmallConvNet(in_channels, use_batch_norm=False)
    for depth in DEPTHS:
        if name == "resnet%d_v1" % depth:
            return ResNet(1, depth, in_channels, small_input_stem)
        if name == "resnet%d_v2" % depth:
            return ResNet(2, depth, in_channels, small_input_stem)
    raise ValueError("unknown model name '%s'; valid names are: %s" % (name, ", ".join(model_names())))


class EmbeddingNet(nn.Module):
    """Normalised float32 images [B, C, H, W] -> unit-length float32 embeddings [B, embed_dim].

    Attributes kept in the TorchScript module: model_name, embed_dim, in_channels, small_input_stem,
    crop_size (the training crop, 0 if unknown), mean and std (of the input normalisation).
    """

    def __init__(self, name: str, embed_dim: int, in_channels: int = 3, small_input_stem: bool = False,
                 crop_size: int = 0):
        super().__init__()
        if embed_dim <= 0:
            raise ValueError("embed_dim is %d; it must be positive" % embed_dim)
        self.backbone = build_backbone(name, in_channels, small_input_stem)
        self.head = nn.Linear(self.backbone.feature_dim, embed_dim)
        self.model_name = name
        self.embed_dim = embed_dim
        self.in_channels = in_channels
        self.small_input_stem = small_input_stem
        self.crop_size = crop_size
        # dml's input normalisation (src/pipeline/normalize.cpp): (pixel / 255 - mean) / std.
        self.mean: List[float] = [0.485, 0.456, 0.406]
        self.std: List[float] = [0.229, 0.224, 0.225]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError("input must be a normalised float32 image batch [B, C, H, W] with C = in_channels")
        pooled = self.backbone(x).to(torch.float32).mean(dim=[2, 3])
        z = self.head(pooled)
        # MXNet L2Normalization(mode='instance'): eps inside the square root.
        return z / torch.sqrt(z.pow(2).sum(dim=1, keepdim=True) + 1e-10)


def build_embedding_net(name: str, embed_dim: int, in_channels: int = 3, small_input_stem: bool = False,
                        crop_size: int = 0) -> EmbeddingNet:
    return EmbeddingNet(name, embed_dim, in_channels, small_input_stem, crop_size)
