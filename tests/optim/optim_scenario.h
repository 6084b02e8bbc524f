#pragma once
// A small training scenario shared by the optimiser tests: three parameters in two groups, six
// steps with gradients of varying scale, one step where a parameter has no gradient, and a
// learning-rate change after step 4. Values come from the counter RNG, so they are fixed.
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dml/optim/optimizer.h"
#include "dml/util/counter_rng.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml::test {

// Uniform values in [lo, hi), float64 [n], fixed by (seed, step).
inline torch::Tensor fixed_uniform(uint64_t seed, uint64_t step, int64_t n, double lo, double hi) {
  auto u = random_uniform_tensor(RngKey{seed, RngStream::kInit, step}, torch::arange(n, torch::kInt64), 1);
  return u.reshape({n}).to(torch::kFloat64) * (hi - lo) + lo;
}

struct Scenario {
  std::vector<std::vector<int64_t>> shapes{{3, 4}, {5}, {2, 3}};
  std::vector<int> group_of{0, 0, 1};              // params 0,1 in "net", 2 in "head"
  std::vector<double> group_lr_mult{1.0, 0.1};
  int num_steps = 6;
  double lr_before = 0.01, lr_after = 0.005;     // set_lr(lr_after) before step lr_change_step
  int lr_change_step = 4;
  int skip_step = 2, skip_param = 1;             // param 1 has no gradient at step 2
  std::vector<double> grad_scale{1.0, 0.01, 3.0, 1e-4, 0.5, 2.0};

  double lr_at(int step) const { return step >= lr_change_step ? lr_after : lr_before; }
  torch::Tensor init(size_t p, torch::ScalarType dtype) const {
    int64_t n = 1;
    for (int64_t s : shapes[p]) n *= s;
    return fixed_uniform(100 + p, 0, n, -1.0, 1.0).reshape(shapes[p]).to(dtype);
  }
  // Undefined when the parameter has no gradient at this step.
  torch::Tensor grad(int step, size_t p, torch::ScalarType dtype) const {
    if (step == skip_step && static_cast<int>(p) == skip_param) return {};
    int64_t n = 1;
    for (int64_t s : shapes[p]) n *= s;
    return (fixed_uniform(200 + p, step + 1, n, -1.0, 1.0) * grad_scale[step]).reshape(shapes[p]).to(dtype);
  }
};

// Fresh leaf parameters (requires_grad) at the scenario's initial values.
inline std::vector<torch::Tensor> make_params(const Scenario& sc, torch::ScalarType dtype) {
  std::vector<torch::Tensor> params;
  for (size_t p = 0; p < sc.shapes.size(); ++p) params.push_back(sc.init(p, dtype).requires_grad_(true));
  return params;
}

inline std::vector<OptimizerParamGroup> make_groups(const Scenario& sc, const std::vector<torch::Tensor>& params) {
  std::vector<OptimizerParamGroup> groups{{"net", {}, sc.group_lr_mult[0]}, {"head", {}, sc.group_lr_mult[1]}};
  for (size_t p = 0; p < params.size(); ++p) groups[sc.group_of[p]].params.push_back(params[p]);
  return groups;
}

// Runs steps [begin, end) of the scenario on `opt`, whose params are `params`.
inline void run_steps(const Scenario& sc, Optimizer& opt, std::vector<torch::Tensor>& params, int begin, int end) {
  for (int s = begin; s < end; ++s) {
    opt.set_lr(sc.lr_at(s));
    for (size_t p = 0; p < params.size(); ++p) params[p].mutable_grad() = sc.grad(s, p, params[p].scalar_type());
    opt.step();
  }
}

inline std::string json_list(const torch::Tensor& t) {
  auto flat = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
  std::string out = "[";
  char buffer[40];
  for (int64_t i = 0; i < flat.numel(); ++i) {
    std::snprintf(buffer, sizeof(buffer), "%.17g", flat[i].item<double>());
    out += (i ? ", " : "") + std::string(buffer);
  }
  return out + "]";
}

// The scenario and options as JSON for the NumPy reference (numpy_reference below).
inline std::string scenario_json(const Scenario& sc, const OptimizerOptions& o, torch::ScalarType dtype) {
  std::ostringstream js;
  js.precision(17);
  js << "{\"kind\": \"" << optimizer_name(o.kind) << "\", \"dtype\": \""
     << (dtype == torch::kFloat64 ? "float64" : "float32") << "\", \"wd\": " << o.weight_decay
     << ", \"rescale\": " << o.rescale_grad << ", \"b1\": " << o.beta1 << ", \"b2\": " << o.beta2
     << ", \"eps\": " << o.epsilon << ", \"momentum\": " << o.momentum << ", \"gamma\": " << o.rmsprop_gamma
     << ", \"rms_eps\": " << o.rmsprop_epsilon << ", \"lr_mult\": [";
  for (size_t p = 0; p < sc.shapes.size(); ++p) js << (p ? ", " : "") << sc.group_lr_mult[sc.group_of[p]];
  js << "], \"init\": [";
  for (size_t p = 0; p < sc.shapes.size(); ++p) js << (p ? ", " : "") << json_list(sc.init(p, dtype));
  js << "], \"steps\": [";
  for (int s = 0; s < sc.num_steps; ++s) {
    js << (s ? ", " : "") << "{\"lr\": " << sc.lr_at(s) << ", \"grads\": [";
    for (size_t p = 0; p < sc.shapes.size(); ++p) {
      auto g = sc.grad(s, p, dtype);
      js << (p ? ", " : "") << (g.defined() ? json_list(g) : std::string("null"));
    }
    js << "]}";
  }
  js << "]}";
  return js.str();
}

// Final parameters of the independent NumPy implementation of the update formulas of the task
// statement (MXNet semantics, in the scenario's dtype: tests/optim/python/numpy_optimizers.py),
// as float64 tensors (flattened).
inline std::vector<torch::Tensor> numpy_reference(const std::string& spec_json) {
  TempDir dir;
  std::ofstream(dir.file("spec.json")) << spec_json;
  auto result = run_python_file("tests/optim/python/numpy_optimizers.py", {dir.file("spec.json"), dir.file("out.txt")});
  check(result.exit_code == 0, "numpy reference failed: ", result.output);
  std::ifstream in(dir.file("out.txt"));
  std::vector<torch::Tensor> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream values(line);
    std::vector<double> v;
    double x = 0;
    while (values >> x) v.push_back(x);
    out.push_back(torch::tensor(v, torch::kFloat64));
  }
  return out;
}

}  // namespace dml::test
