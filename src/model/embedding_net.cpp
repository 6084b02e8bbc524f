#include "dml/model/embedding_net.h"

#include <ATen/autocast_mode.h>

#include "dml/model/init.h"
#include "dml/model/model_factory.h"
#include "dml/model/pretrained.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {

namespace {

// Turns autocast off (CPU and CUDA) for a scope and restores the previous state: the head and
// the normalisation run in float32 because the loss's distance weights span ~1e40 in 128-d.
class AutocastOff {
 public:
  AutocastOff() : gpu_(at::autocast::is_enabled()), cpu_(at::autocast::is_cpu_enabled()) {
    at::autocast::set_enabled(false);
    at::autocast::set_cpu_enabled(false);
  }
  ~AutocastOff() {
    at::autocast::set_enabled(gpu_);
    at::autocast::set_cpu_enabled(cpu_);
  }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  bool gpu_;
  bool cpu_;
};

}  // namespace

void validate_model_options(const ModelOptions& options) {
  check_model_name(options.name);
  check_option(options.embed_dim > 0, "embed_dim", "embedding size is ", options.embed_dim, "; it must be positive");
  check_option(options.in_channels > 0, "in_channels", "input channels are ", options.in_channels,
               "; they must be positive");
}

EmbeddingNetImpl::EmbeddingNetImpl(const ModelOptions& options) : options_(options) {
  validate_model_options(options);
  backbone_ = register_module("backbone", make_backbone(options.name, options.in_channels,
                                                        options.small_input_stem));
  head_ = register_module("head", torch::nn::Linear(backbone_->feature_dim(), options.embed_dim));
}

int64_t EmbeddingNetImpl::feature_dim() const { return backbone_->feature_dim(); }

torch::Tensor EmbeddingNetImpl::features(torch::Tensor x) {
  check(x.dim() == 4 && x.size(1) == options_.in_channels, "model ", options_.name,
        ": input must be [B, ", options_.in_channels, ", H, W], got ", x.sizes(),
        "; check --in-channels / the data set's channel count");
  if (options_.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  torch::Tensor map;
  {
    AutocastScope autocast(options_.precision, x.device());
    map = backbone_->forward(x);
  }
  AutocastOff autocast_off;
  return map.to(torch::kFloat32).mean({2, 3});
}

torch::Tensor EmbeddingNetImpl::forward(torch::Tensor x) {
  const torch::Tensor pooled = features(x);
  AutocastOff autocast_off;
  const torch::Tensor z = head_->forward(pooled);
  // MXNet L2Normalization(mode='instance'): eps inside the square root.
  return z / torch::sqrt(z.pow(2).sum(/*dim=*/1, /*keepdim=*/true) + 1e-10);
}

void EmbeddingNetImpl::set_batch_norm_frozen(bool frozen) {
  batch_norm_frozen_ = frozen;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      if (bn->weight.defined()) bn->weight.set_requires_grad(!frozen);
      if (bn->bias.defined()) bn->bias.set_requires_grad(!frozen);
    }
  }
  train(is_training());
}

void EmbeddingNetImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (!batch_norm_frozen_) return;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* bn = module->as<torch::nn::BatchNorm2d>()) bn->eval();
  }
}

EmbeddingNet make_embedding_net(const ModelOptions& options, uint64_t seed) {
  const std::string path =
      options.pretrained_path.empty() ? default_pretrained_path(options.name) : options.pretrained_path;
  // Fail before building a large model when the options are wrong or the weights are not there.
  validate_model_options(options);
  if (options.use_pretrained) check_pretrained_file_exists(options.name, path);
  EmbeddingNet net(options);
  initialise_reference(*net, seed);
  if (options.use_pretrained) {
    load_pretrained_backbone(net->backbone(), path, options.name);
    log::info("model", str("loaded pretrained ", options.name, " backbone from ", path));
  }
  if (options.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) {
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  return net;
}

}  // namespace dml
