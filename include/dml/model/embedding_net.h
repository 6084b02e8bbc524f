#pragma once
// The embedding network of the reference (MarginNet): backbone -> global average pool ->
// Linear(feature_dim, embed_dim) -> L2 normalisation x / sqrt(sum x^2 + 1e-10).
// Module names: "backbone.<backbone names>", "head.weight", "head.bias".
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dml/model/backbone.h"
#include "dml/model/precision.h"

namespace dml {

struct ModelOptions {
  std::string name = "resnet50_v2";   // one of model_names()
  int64_t embed_dim = 128;
  int64_t in_channels = 3;
  bool small_input_stem = false;      // 3x3 stride-1 first conv, no max-pool (images <= 64 px)
  bool use_pretrained = false;
  std::string pretrained_path;        // empty: default_pretrained_path(name)
  // How the backbone computes (see precision.h): its forward under autocast to this precision, and
  // its 4-D weights and inputs in channels-last layout. Neither changes the weights' values.
  Precision precision = Precision::kFp32;
  bool channels_last = false;
};

// The rules that need no model: a known name (check_model_name), embed_dim and in_channels > 0.
// Throws OptionError naming the field ("name", "embed_dim", "in_channels"). make_embedding_net also
// checks, before building, that the pretrained weights file exists.
void validate_model_options(const ModelOptions& options);

class EmbeddingNetImpl : public torch::nn::Module {
 public:
  // Builds the modules with LibTorch's default initialisation; make_embedding_net() initialises
  // them as the reference does and loads pretrained weights.
  explicit EmbeddingNetImpl(const ModelOptions& options);

  // x: float32 [B, in_channels, H, W], already normalised, on the module's device.
  // Returns float32 [B, embed_dim] on the same device, each row x / sqrt(sum x^2 + 1e-10).
  // The backbone runs under autocast to options().precision (in channels-last layout with
  // options().channels_last); pooling, head and normalisation always run in float32.
  torch::Tensor forward(torch::Tensor x);
  // Backbone + global average pool: float32 [B, feature_dim()].
  torch::Tensor features(torch::Tensor x);

  int64_t feature_dim() const;
  int64_t embed_dim() const { return options_.embed_dim; }
  const ModelOptions& options() const { return options_; }
  BackboneImpl& backbone() { return *backbone_; }
  torch::nn::Linear& head() { return head_; }

  // Frozen BN: every BatchNorm stays in eval mode (running statistics, no updates) whatever
  // train() says, and BN weight/bias get requires_grad=false. Unfreezing restores both.
  void set_batch_norm_frozen(bool frozen);
  bool batch_norm_frozen() const { return batch_norm_frozen_; }
  void train(bool on = true) override;  // respects the frozen state

 private:
  ModelOptions options_;
  std::shared_ptr<BackboneImpl> backbone_;
  torch::nn::Linear head_{nullptr};
  bool batch_norm_frozen_ = false;
};
TORCH_MODULE(EmbeddingNet);

// Builds an EmbeddingNet on the CPU and initialises it as the reference does: Xavier-uniform
// with magnitude 2 on every conv and linear weight (see init.h), zero biases, BN gamma 1 beta 0,
// running mean 0 var 1; all draws keyed by `seed` (identical for equal seeds, on any machine).
// With options.use_pretrained, the backbone's parameters and buffers are then replaced by those
// in options.pretrained_path (default_pretrained_path(name) when empty), see pretrained.h; only
// the head keeps its Xavier weights. Errors (dml::Error): unknown name (lists the valid names),
// missing pretrained file (prints the command that creates it), name/shape mismatch.
// With options.channels_last, the 4-D parameters are then stored channels-last (same values).
EmbeddingNet make_embedding_net(const ModelOptions& options, uint64_t seed);

}  // namespace dml
