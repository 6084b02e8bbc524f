"""Two files that are not plain dicts of tensors, for the loader's error messages.

Usage: not_a_state_dict.py TENSOR_PATH ORDERED_DICT_PATH
Writes torch.save(torch.zeros(2)) to TENSOR_PATH and torch.save(OrderedDict(a=torch.zeros(2)))
to ORDERED_DICT_PATH (what torch.save(model.state_dict()) gives, which LibTorch's pickle_load
cannot read). Called by tests/model/pretrained_test.cpp.
"""
import collections
import sys

import torch


def main(tensor_path, ordered_dict_path):
    torch.save(torch.zeros(2), tensor_path)
    torch.save(collections.OrderedDict(a=torch.zeros(2)), ordered_dict_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
