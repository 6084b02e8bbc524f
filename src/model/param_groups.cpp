#include "dml/model/param_groups.h"

#include <unordered_set>

namespace dml {

std::vector<ParamGroup> parameter_groups(EmbeddingNet& net, bool use_pretrained) {
  // The reference sets lr_mult 0.01 on every parameter whose name contains "conv", i.e. every
  // conv weight (ResNet convs have no bias). We select by module type instead of by name.
  std::unordered_set<const c10::TensorImpl*> conv_weights;
  for (const auto& module : net->backbone().modules(/*include_self=*/true)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) conv_weights.insert(conv->weight.unsafeGetTensorImpl());
  }
  ParamGroup conv{"backbone_conv", {}, {}, 0.01};
  ParamGroup rest{use_pretrained ? "rest" : "all", {}, {}, 1.0};
  for (const auto& item : net->named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    const bool is_conv = use_pretrained && conv_weights.count(item.value().unsafeGetTensorImpl()) > 0;
    ParamGroup& group = is_conv ? conv : rest;
    group.params.push_back(item.value());
    group.param_names.push_back(item.key());
  }
  std::vector<ParamGroup> groups;
  if (!conv.params.empty()) groups.push_back(std::move(conv));
  if (!rest.params.empty()) groups.push_back(std::move(rest));
  return groups;
}

}  // namespace dml
