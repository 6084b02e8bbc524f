#include "dml/model/init.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "dml/util/counter_rng.h"
#include "dml/util/error.h"

namespace dml {

double xavier_magnitude2_bound(at::IntArrayRef shape) {
  check(shape.size() >= 2, "xavier_magnitude2_bound: weight shape ", shape, " has fewer than 2 dims");
  double receptive_field = 1.0;
  for (size_t i = 2; i < shape.size(); ++i) receptive_field *= static_cast<double>(shape[i]);
  const double fan_in = static_cast<double>(shape[1]) * receptive_field;
  const double fan_out = static_cast<double>(shape[0]) * receptive_field;
  return std::sqrt(2.0 / ((fan_in + fan_out) / 2.0));
}

namespace {

// A generator seeded from the counter RNG, one per parameter ordinal.
at::Generator generator_for(uint64_t seed, uint64_t ordinal) {
  const RngKey key{seed, RngStream::kInit, /*step=*/0};
  const uint64_t hi = random_u32(key, ordinal, /*draw=*/0);
  const uint64_t lo = random_u32(key, ordinal, /*draw=*/1);
  return at::make_generator<at::CPUGeneratorImpl>((hi << 32) | lo);
}

void fill_uniform(torch::Tensor& weight, double bound, at::Generator generator) {
  torch::Tensor values = torch::empty(weight.sizes(), torch::kFloat32);
  values.uniform_(-bound, bound, generator);
  weight.copy_(values);
}

}  // namespace

void initialise_reference(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  // Ordinals follow named_parameters() order, so the draws of a parameter do not depend on
  // which device the module is on or how many other parameters were drawn before it.
  std::unordered_map<const c10::TensorImpl*, uint64_t> ordinal;
  uint64_t next = 0;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    ordinal[item.value().unsafeGetTensorImpl()] = next++;
  }
  auto xavier = [&](torch::Tensor& weight) {
    fill_uniform(weight, xavier_magnitude2_bound(weight.sizes()),
                 generator_for(seed, ordinal.at(weight.unsafeGetTensorImpl())));
  };
  for (const auto& child : module.modules(/*include_self=*/true)) {
    if (auto* conv = child->as<torch::nn::Conv2d>()) {
      xavier(conv->weight);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = child->as<torch::nn::Linear>()) {
      xavier(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* bn = child->as<torch::nn::BatchNorm2d>()) {
      if (bn->weight.defined()) bn->weight.fill_(1.0);
      if (bn->bias.defined()) bn->bias.zero_();
      if (bn->running_mean.defined()) bn->running_mean.zero_();
      if (bn->running_var.defined()) bn->running_var.fill_(1.0);
      if (bn->num_batches_tracked.defined()) bn->num_batches_tracked.zero_();
    }
  }
}

}  // namespace dml
