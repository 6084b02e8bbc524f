"""An independent PyTorch ResNetV2 (pre-activation), the reference for dml's resnet*_v2.

Written from the block definitions of MXNet Gluon's model_zoo/vision/resnet.py (BasicBlockV2,
BottleneckV2, ResNetV2), not from dml's C++: the tests compare dml against it. Module names are
dml's (input_bn, conv1, bn1, layerN.i.{bn1, conv1, ...}, downsample, bn_final), so a state dict of
this model loads into dml by name.

This file is a module, imported by the scripts next to it (resnet_v2_reference.py,
state_dict_listing.py); it has no command line of its own.
"""
import torch
from torch import nn
import torch.nn.functional as F


class BasicBlockV2(nn.Module):
    """Gluon BasicBlockV2: a = relu(bn1(x)); conv2(relu(bn2(conv1(a)))) + (downsample(a) or x)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        # Gluon projects whenever the channel count changes; the projection reads the
        # pre-activated input.
        self.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if cin != cout else None

    def forward(self, x):
        residual = x
        x = F.relu(self.bn1(x))
        if self.downsample is not None:
            residual = self.downsample(x)
        x = self.conv1(x)
        x = self.conv2(F.relu(self.bn2(x)))
        return x + residual


class BottleneckV2(nn.Module):
    """Gluon BottleneckV2 (width cout / 4, stride on the 3x3 conv)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        width = cout // 4
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, width, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, 1, bias=False)
        self.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if cin != cout else None

    def forward(self, x):
        residual = x
        x = F.relu(self.bn1(x))
        if self.downsample is not None:
            residual = self.downsample(x)
        x = self.conv1(x)
        x = self.conv2(F.relu(self.bn2(x)))
        x = self.conv3(F.relu(self.bn3(x)))
        return x + residual


# Gluon's resnet_spec and ResNetV2 channel lists: (block, blocks per stage, [stem, stage1..4]).
SPECS = {
    18: (BasicBlockV2, [2, 2, 2, 2], [64, 64, 128, 256, 512]),
    34: (BasicBlockV2, [3, 4, 6, 3], [64, 64, 128, 256, 512]),
    50: (BottleneckV2, [3, 4, 6, 3], [64, 256, 512, 1024, 2048]),
    101: (BottleneckV2, [3, 4, 23, 3], [64, 256, 512, 1024, 2048]),
    152: (BottleneckV2, [3, 8, 36, 3], [64, 256, 512, 1024, 2048]),
}


class ResNetV2(nn.Module):
    """Backbone without the classifier: forward returns the pooled features [B, C].

    small=True is Gluon's thumbnail stem: conv 3x3/1 and neither bn1 nor the max-pool (the first
    block pre-activates its input anyway).
    """

    def __init__(self, depth, small, in_channels=3):
        super().__init__()
        block, layers, channels = SPECS[depth]
        self.small = small
        # Gluon: BatchNorm(scale=False, center=False) on the raw input.
        self.input_bn = nn.BatchNorm2d(in_channels, affine=False)
        if small:
            self.conv1 = nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, channels[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(channels[0])
        cin = channels[0]
        for i, n in enumerate(layers):
            blocks = []
            for j in range(n):
                stride = (1 if i == 0 else 2) if j == 0 else 1
                blocks.append(block(cin, channels[i + 1], stride))
                cin = channels[i + 1]
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.bn_final = nn.BatchNorm2d(cin)

    def forward(self, x):
        x = self.conv1(self.input_bn(x))
        if not self.small:
            x = F.max_pool2d(F.relu(self.bn1(x)), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.relu(self.bn_final(x)).mean(dim=(2, 3))
