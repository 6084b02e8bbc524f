// Optimizer::save / load: the full state needed for a bit-exact resume.
//
// Keys (all under "<prefix>/"; a trailing '/' of prefix is not doubled): kind, lr, num_updates,
// num_groups, and per group g "group/<g>/name", "group/<g>/num_params", per parameter i "group/<g>/param/<i>/count" and, when the
// state exists, "group/<g>/param/<i>/first" and ".../second" (CPU copies, so a checkpoint written on
// a GPU loads on a CPU-only machine; the copies are exact).
#include <torch/torch.h>

#include "dml/optim/optimizer.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// "<prefix>/" without doubling a trailing slash ("optim/network/" and "optim/network" are the same).
std::string base_of(const std::string& prefix) {
  return !prefix.empty() && prefix.back() == '/' ? prefix : prefix + "/";
}

std::string param_key(const std::string& base, size_t g, size_t i, const char* field) {
  return str(base, "group/", g, "/param/", i, "/", field);
}

c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue value;
  check(archive.try_read(key, value), "optimizer checkpoint: key '", key,
        "' is missing; the checkpoint was written by another optimizer set-up or is not a dml checkpoint");
  return value;
}

int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key) {
  const c10::IValue value = read_value(archive, key);
  check(value.isInt(), "optimizer checkpoint: key '", key, "' is not an integer");
  return value.toInt();
}

torch::Tensor read_state_tensor(torch::serialize::InputArchive& archive, const std::string& key,
                                const torch::Tensor& param) {
  torch::Tensor value;
  check(archive.try_read(key, value), "optimizer checkpoint: tensor '", key, "' is missing");
  check(value.sizes() == param.sizes(), "optimizer checkpoint: tensor '", key, "' has shape ", value.sizes(),
        " but the parameter has shape ", param.sizes(), "; resume with the same model");
  check(value.scalar_type() == param.scalar_type(), "optimizer checkpoint: tensor '", key, "' has dtype ",
        value.scalar_type(), " but the parameter has dtype ", param.scalar_type());
  return value.to(param.device()).clone();
}

}  // namespace

void Optimizer::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  const std::string base = base_of(prefix);
  archive.write(base + "kind", c10::IValue(optimizer_name(options_.kind)));
  archive.write(base + "lr", c10::IValue(options_.lr));
  archive.write(base + "num_updates", c10::IValue(num_updates_));
  archive.write(base + "num_groups", c10::IValue(static_cast<int64_t>(groups_.size())));
  for (size_t g = 0; g < groups_.size(); ++g) {
    archive.write(str(base, "group/", g, "/name"), c10::IValue(groups_[g].name));
    archive.write(str(base, "group/", g, "/num_params"),
                  c10::IValue(static_cast<int64_t>(groups_[g].params.size())));
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const ParamState& state = states_[g][i];
      archive.write(param_key(base, g, i, "count"), c10::IValue(state.count));
      if (state.first.defined()) archive.write(param_key(base, g, i, "first"), state.first.cpu(), true);
      if (state.second.defined()) archive.write(param_key(base, g, i, "second"), state.second.cpu(), true);
    }
  }
}

void Optimizer::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  const std::string base = base_of(prefix);
  const c10::IValue kind = read_value(archive, base + "kind");
  check(kind.isString() && kind.toStringRef() == optimizer_name(options_.kind), "optimizer checkpoint: '",
        base, "kind' is ", kind.isString() ? kind.toStringRef() : std::string("not a string"),
        " but this run uses ", optimizer_name(options_.kind), "; resume with the same --optimizer");
  const c10::IValue lr = read_value(archive, base + "lr");
  check(lr.isDouble(), "optimizer checkpoint: '", base, "lr' is not a number");
  const int64_t num_updates = read_int(archive, base + "num_updates");
  const int64_t num_groups = read_int(archive, base + "num_groups");
  check(num_groups == static_cast<int64_t>(groups_.size()), "optimizer checkpoint: '", prefix, "' has ",
        num_groups, " parameter groups but this run has ", groups_.size(), "; resume with the same model options");

  // Read everything first, then commit, so a failed load leaves the optimizer unchanged.
  std::vector<std::vector<ParamState>> states(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const c10::IValue name = read_value(archive, str(base, "group/", g, "/name"));
    check(name.isString() && name.toStringRef() == groups_[g].name, "optimizer checkpoint: group ", g,
          " of '", prefix, "' is named ", name.isString() ? name.toStringRef() : std::string("?"),
          " but this run's is ", groups_[g].name, "; resume with the same model options");
    const int64_t num_params = read_int(archive, str(base, "group/", g, "/num_params"));
    check(num_params == static_cast<int64_t>(groups_[g].params.size()), "optimizer checkpoint: group '",
          groups_[g].name, "' of '", prefix, "' has ", num_params, " parameters but this run has ",
          groups_[g].params.size(), "; resume with the same model");
    states[g].resize(groups_[g].params.size());
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const torch::Tensor& param = groups_[g].params[i];
      ParamState& state = states[g][i];
      state.count = read_int(archive, param_key(base, g, i, "count"));
      if (state.count == 0) continue;
      const bool plain_sgd = options_.kind == OptimizerKind::kSgd && options_.momentum == 0;
      if (!plain_sgd) state.first = read_state_tensor(archive, param_key(base, g, i, "first"), param);
      if (options_.kind == OptimizerKind::kAdam || options_.kind == OptimizerKind::kAdamW) {
        state.second = read_state_tensor(archive, param_key(base, g, i, "second"), param);
      }
    }
  }
  states_ = std::move(states);
  options_.lr = lr.toDouble();
  num_updates_ = num_updates;
}

}  // namespace dml
