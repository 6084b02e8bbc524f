"""The parameter count of a Gluon ResNetV2 backbone, from its architecture table alone.

Usage: resnet_v2_parameter_count.py DEPTH [--small-input-stem]
Prints one integer: conv weights (k*k*cin*cout, no biases) plus BatchNorm gamma and beta, for the
stem, the four stages of BasicBlockV2 / BottleneckV2 (a 1x1 projection where the channel count
changes) and the final BN; the input BN has no parameters. The small-input stem is a 3x3 conv
without bn1. No torch: this is arithmetic on the table, independent of any implementation.
Called by tests/model/resnet_v2_test.cpp.
"""
import sys

SPECS = {18: ("basic", [2, 2, 2, 2], [64, 64, 128, 256, 512]),
         34: ("basic", [3, 4, 6, 3], [64, 64, 128, 256, 512]),
         50: ("bottle", [3, 4, 6, 3], [64, 256, 512, 1024, 2048]),
         101: ("bottle", [3, 4, 23, 3], [64, 256, 512, 1024, 2048]),
         152: ("bottle", [3, 8, 36, 3], [64, 256, 512, 1024, 2048])}


def conv(cin, cout, k):
    return cin * cout * k * k


def bn(c):
    return 2 * c


def count(depth, small, in_channels=3):
    kind, layers, ch = SPECS[depth]
    total = conv(in_channels, ch[0], 3) if small else conv(in_channels, ch[0], 7) + bn(ch[0])
    cin = ch[0]
    for stage, n in enumerate(layers):
        cout = ch[stage + 1]
        for _ in range(n):
            if kind == "basic":
                total += bn(cin) + conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3)
            else:
                w = cout // 4
                total += bn(cin) + conv(cin, w, 1) + bn(w) + conv(w, w, 3) + bn(w) + conv(w, cout, 1)
            if cin != cout:
                total += conv(cin, cout, 1)
            cin = cout
    return total + bn(cin)


if __name__ == "__main__":
    print(count(int(sys.argv[1]), "--small-input-stem" in sys.argv[2:]))
