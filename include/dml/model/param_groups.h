#pragma once
// Parameter groups for the optimiser, as the reference sets lr_mult.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "dml/model/embedding_net.h"

namespace dml {

struct ParamGroup {
  std::string name;                      // "backbone_conv", "rest" or "all"
  std::vector<torch::Tensor> params;     // the module's own tensors (not copies)
  std::vector<std::string> param_names;  // full names, e.g. "backbone.layer1.0.conv1.weight"
  double lr_mult = 1.0;
};

// Only parameters with requires_grad, in named_parameters() order within each group.
// use_pretrained: {"backbone_conv": every Conv2d weight of the backbone, lr_mult 0.01},
//                 {"rest": everything else (BN, conv biases, head), lr_mult 1.0};
// otherwise one group {"all", lr_mult 1.0}. Empty groups are omitted.
std::vector<ParamGroup> parameter_groups(EmbeddingNet& net, bool use_pretrained);

}  // namespace dml
